// Board items as people read them: how late, how long is left, how far it was escalated.
import { fmtDuration, t } from '../i18n.js';
import { levelName } from '../ref.js';

// Seconds late (> 0) or left (< 0) now, from the item's deadline (the server's figures are
// as of its answer; the board keeps counting).
export const lateSeconds = (it, now = Date.now()) => (now - new Date(it.due_at).getTime()) / 1000;

export function lateText(it, now = Date.now()) {
  const s = lateSeconds(it, now);
  return s >= 0 ? t(`已超时 ${fmtDuration(s)}`, `${fmtDuration(s)} late`)
    : t(`剩余 ${fmtDuration(-s)}`, `${fmtDuration(-s)} left`);
}

export function escalationText(it) {
  return it.escalation_level
    ? t(`已上报至${levelName(it.escalation_level)}`, `escalated to ${levelName(it.escalation_level).toLowerCase()}`)
    : t('未逐级上报', 'not escalated');
}

export function urgeText(it) {
  return it.urge_count ? t(`督办 ${it.urge_count} 次`, `urged ${it.urge_count}×`) : t('未督办', 'not urged');
}

// A Beijing-time calendar day, to tell "today" apart.
const DAY = new Intl.DateTimeFormat('en-CA', { timeZone: 'Asia/Shanghai', year: 'numeric', month: '2-digit', day: '2-digit' });
export const beijingDay = (value) => DAY.format(value instanceof Date ? value : new Date(value));

// What the live stream's change names mean.
const CHANGES = {
  started: ['开始计时', 'clock started'], moved: ['时限变更', 'deadline moved'],
  stopped: ['停止计时', 'clock stopped'], paused: ['挂账/缓办暂停', 'paused'],
  resumed: ['恢复计时', 'resumed'], warned: ['临期预警', 'warning'],
  overdue: ['超时', 'overdue'], escalated: ['逐级上报', 'escalated'], urged: ['督办', 'urged'],
};
export const changeName = (c) => (CHANGES[c] ? t(...CHANGES[c]) : c);
export const changeTone = (c) => ({ overdue: 'red', escalated: 'red', warned: 'yellow', urged: 'blue', stopped: 'green' }[c] ?? 'plain');
