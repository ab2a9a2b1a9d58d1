// 群众评单 — the resident's page behind a one-time rating link (/ratings/<token>), no account:
// what the case was, 1–5 stars, an optional comment. Chinese first, English on a switch.
// Standalone: rate.html loads only this module (no console shell, no sign-in).
import { html, render, useEffect, useRef, useState } from '../vendor/preact-htm.mjs';
import { getLang, onLang, setLang, t } from './i18n.js';

const token = decodeURIComponent(location.pathname.split('/').filter(Boolean)[1] ?? '');
const base = `/api/intake/ratings/${encodeURIComponent(token)}`;

// The stylesheet of the worker and resident screens (rate.html links only app.css).
if (!document.querySelector('link[href="/static/css/worker.css"]')) {
  const link = document.createElement('link');
  link.rel = 'stylesheet';
  link.href = '/static/css/worker.css';
  document.head.append(link);
}

const SCORES = [
  [1, '非常不满意', 'Very dissatisfied'],
  [2, '不满意', 'Dissatisfied'],
  [3, '一般', 'Neutral'],
  [4, '满意', 'Satisfied'],
  [5, '非常满意', 'Very satisfied'],
];
const COMMENT_MAX = 1000;

// intake answers the status in Chinese; its English words for the switch
const STATUS_EN = {
  已上报: 'Reported', 已吹哨: 'Whistled', 待人工派单: 'Awaiting dispatch', 已派单: 'Dispatched',
  部门已报到: 'Signed for', 已办结待核查: 'Resolved, to verify', '核查未通过，返工中': 'In rework',
  已结案: 'Closed', 已重新打开: 'Reopened',
};

async function call(method, url, body) {
  let res;
  try {
    res = await fetch(url, {
      method,
      headers: { 'Accept-Language': getLang(), ...(body ? { 'Content-Type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
      credentials: 'omit',
    });
  } catch {
    const e = new Error(t('网络连接失败，请检查网络后重试。', 'The network failed; check the connection and try again.'));
    e.network = true;
    throw e;
  }
  let data = null;
  try { data = await res.json(); } catch { /* not JSON */ }
  if (!res.ok) {
    const e = new Error(data?.error?.message ?? t(`请求失败（${res.status}）`, `Request failed (${res.status})`));
    e.status = res.status;
    e.code = data?.error?.code;
    throw e;
  }
  return data;
}

function Stars({ score }) {
  return html`<span class="stars-static" aria-hidden="true">${[1, 2, 3, 4, 5].map((n) => html`<span class=${n <= score ? 'on' : ''}>★</span>`)}</span>`;
}

function RatePage() {
  const [, setTick] = useState(0);
  const [state, setState] = useState({ loading: true, item: null, error: null });
  const [categories, setCategories] = useState([]);
  const [score, setScore] = useState(0);
  const [comment, setComment] = useState('');
  const [busy, setBusy] = useState(false);
  const [sendError, setSendError] = useState(null);
  const [scoreError, setScoreError] = useState(false);
  const [rated, setRated] = useState(null);

  const ratedRef = useRef(null);
  ratedRef.current = rated;
  // Another language: read the case (or the server's refusal) again in it; a rating already
  // sent stays on screen. What was chosen and typed is kept.
  useEffect(() => onLang(() => { setTick((n) => n + 1); if (!ratedRef.current) load(); }), []);
  useEffect(() => { document.title = t('评价办理结果 · 吹哨', 'Rate the result · Whistle'); });

  const load = () => {
    setState({ loading: true, item: null, error: null });
    if (!/^[A-Za-z0-9_-]{16,64}$/.test(token)) {
      setState({ loading: false, item: null, error: new Error(t('评价链接无效、已使用或已过期', 'the rating link is invalid, used or expired')) });
      return;
    }
    call('GET', base)
      .then((item) => setState({ loading: false, item, error: null }))
      .catch((error) => setState({ loading: false, item: null, error }));
    call('GET', '/api/dispatch/categories').then(setCategories).catch(() => null);
  };
  useEffect(load, []);

  const categoryName = (code) => {
    const c = categories.find((x) => x.code === code);
    if (!c) return code;
    const parent = c.parent_code && categories.find((x) => x.code === c.parent_code);
    return parent ? `${parent.name} › ${c.name}` : c.name;
  };

  const submit = async (e) => {
    e.preventDefault();
    if (!score) { setScoreError(true); document.getElementById('score-1')?.focus(); return; }
    setBusy(true); setSendError(null);
    try {
      setRated(await call('POST', base, { score, comment: comment.trim() || null }));
    } catch (err) { setSendError(err); } finally { setBusy(false); }
  };

  const other = getLang() === 'zh' ? 'en' : 'zh';
  const langSwitch = html`<button type="button" class="link rate-lang" lang=${other === 'en' ? 'en' : 'zh-CN'}
    onClick=${() => setLang(other)}>${other === 'en' ? 'English' : '中文'}</button>`;
  const { loading, item, error } = state;
  const chosen = SCORES.find(([n]) => n === score);

  let body;
  if (loading) body = html`<p class="muted" role="status">${t('加载中…', 'Loading…')}</p>`;
  else if (error) {
    body = html`<div class="rate-problem">
      <p class="error" role="alert">${error.message}</p>
      ${error.network ? html`<button type="button" onClick=${load}>${t('重试', 'Try again')}</button>`
        : html`<p class="muted">${t('每个评价链接只能使用一次，并有有效期。如需帮助，请联系您所在的社区或网格员。',
          'Each rating link works once and for a limited time. For help, contact your community or grid worker.')}</p>`}
    </div>`;
  } else if (rated) {
    body = html`<div class="rate-thanks" role="status">
      <p class="rate-thanks-big"><span aria-hidden="true">✓ </span>${t('感谢您的评价！', 'Thank you for your rating!')}</p>
      <p><${Stars} score=${rated.score} /> <span>${t(`${rated.score}星 · ${SCORES[rated.score - 1][1]}`, `${rated.score} of 5 · ${SCORES[rated.score - 1][2]}`)}</span></p>
      ${rated.comment ? html`<p class="rate-comment-echo">“${rated.comment}”</p>` : null}
      <p class="muted small">${t('您的评价已记入案件，将用于改进基层服务和考核办理单位。', 'Your rating is kept with the case and used to improve local services and assess who handled it.')}</p>
    </div>`;
  } else {
    body = html`
      <dl class="rate-case">
        <dt>${t('案件编号', 'Case number')}</dt><dd>${item.case_no}</dd>
        <dt>${t('问题类型', 'Problem')}</dt><dd>${categoryName(item.category)}</dd>
        <dt>${t('问题描述', 'Description')}</dt><dd>${item.description}</dd>
        <dt>${t('办理状态', 'Status')}</dt><dd>${getLang() === 'en' ? STATUS_EN[item.status_label] ?? item.status_label : item.status_label}</dd>
      </dl>
      <form class="form rate-form" onSubmit=${submit} novalidate>
        <fieldset class="rate-stars" aria-describedby=${scoreError ? 'score-error' : null}>
          <legend>${t('您对办理结果满意吗？', 'Are you satisfied with the result?')}<span class="req" aria-hidden="true"> *</span></legend>
          <div class="star-row">
            ${SCORES.map(([n, zh, en]) => html`<label class=${`star${n <= score ? ' on' : ''}`} for=${`score-${n}`}>
              <input type="radio" id=${`score-${n}`} name="score" value=${n} checked=${score === n}
                onChange=${() => { setScore(n); setScoreError(false); }} />
              <span class="star-icon" aria-hidden="true">★</span>
              <span class="sr-only">${t(`${n}星，${zh}`, `${n} star${n > 1 ? 's' : ''}, ${en}`)}</span>
            </label>`)}
          </div>
          <p class="star-meaning" aria-hidden="true">${chosen ? t(`${chosen[0]}星 · ${chosen[1]}`, `${chosen[0]} of 5 · ${chosen[2]}`) : t('请点星评分', 'Tap a star')}</p>
          ${scoreError ? html`<p id="score-error" class="error small" role="alert">${t('请选择1到5星', 'Choose 1 to 5 stars')}</p>` : null}
        </fieldset>
        <div class="field">
          <label for="rate-comment">${t('意见建议（选填）', 'Comment (optional)')}</label>
          <textarea id="rate-comment" value=${comment} maxlength=${COMMENT_MAX} rows="4"
            onInput=${(e) => setComment(e.target.value)}></textarea>
          <small class="hint">${comment.length}/${COMMENT_MAX}</small>
        </div>
        ${sendError ? html`<p class="error" role="alert">${sendError.message}</p>` : null}
        <button type="submit" class="primary" disabled=${busy}>${busy ? t('提交中…', 'Sending…') : t('提交评价', 'Send my rating')}</button>
      </form>`;
  }

  return html`<div class="rate-page">
    <header class="rate-head">
      <span class="rate-brand"><img src="/static/icon.svg" alt="" width="28" height="28" />${t('吹哨 · 群众评单', 'Whistle · Rate the result')}</span>
      ${langSwitch}
    </header>
    <section class="rate-card" aria-labelledby="rate-h">
      <h1 id="rate-h">${t('评价办理结果', 'Rate how your problem was handled')}</h1>
      ${body}
    </section>
  </div>`;
}

const root = document.getElementById('main');
root.textContent = ''; // the boot line
render(html`<${RatePage} />`, root);
