// Language (语言): Simplified Chinese first, English as the second locale.
// Every text a person reads is written t('中文', 'English') where it is used.
const KEY = 'whistle.lang';
let lang = localStorage.getItem(KEY) === 'en' ? 'en' : 'zh';
const listeners = new Set();

export const getLang = () => lang;
export const t = (zh, en) => (lang === 'en' && en != null ? en : zh);
export function setLang(next) {
  lang = next === 'en' ? 'en' : 'zh';
  localStorage.setItem(KEY, lang);
  document.documentElement.lang = lang === 'en' ? 'en' : 'zh-CN';
  listeners.forEach((fn) => fn(lang));
}
export const onLang = (fn) => { listeners.add(fn); return () => listeners.delete(fn); };
document.documentElement.lang = lang === 'en' ? 'en' : 'zh-CN';

// Times are shown in Beijing time, as every user of the system reads them.
const TZ = 'Asia/Shanghai';
export function fmtTime(value, { date = true, seconds = false } = {}) {
  if (!value) return '—';
  const d = value instanceof Date ? value : new Date(value);
  if (Number.isNaN(d.getTime())) return '—';
  const opts = { timeZone: TZ, hour: '2-digit', minute: '2-digit', hour12: false };
  if (seconds) opts.second = '2-digit';
  if (date) Object.assign(opts, { year: 'numeric', month: '2-digit', day: '2-digit' });
  return new Intl.DateTimeFormat(lang === 'en' ? 'en-GB' : 'zh-CN', opts).format(d);
}

// "in 2 h 5 min" / "2小时5分后", "3 min late" / "超时3分钟"
export function fmtDuration(seconds) {
  const s = Math.abs(Math.round(seconds));
  const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
  if (lang === 'en') {
    return [d && `${d} d`, h && `${h} h`, (!d && m) && `${m} min`].filter(Boolean).join(' ') || `${s} s`;
  }
  return [d && `${d}天`, h && `${h}小时`, (!d && m) && `${m}分钟`].filter(Boolean).join('') || `${s}秒`;
}

export function fmtDeadline(due, now = Date.now()) {
  if (!due) return '—';
  const left = (new Date(due).getTime() - now) / 1000;
  return left >= 0 ? t(`剩余${fmtDuration(left)}`, `${fmtDuration(left)} left`)
    : t(`已超时${fmtDuration(left)}`, `${fmtDuration(left)} late`);
}
