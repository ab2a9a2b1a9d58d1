// 未诉先办 — hotspots: the cases of one category that keep coming back in one grid over a few
// weeks (grid × category × weeks). A community, street or district accepts one with one
// action — intake opens one proactive case (source 未诉先办) to fix the cause — or sets it aside
// with a reason; either way it is not proposed again for its period. Supervisors read.
import { html, useState } from '../../vendor/preact-htm.mjs';
import { api } from '../api.js';
import { fmtTime, t } from '../i18n.js';
import { areaName, categoryPath, placeName } from '../ref.js';
import { Chip, Empty, ErrorNote, Field, Loading, Page, toast, useAsync } from '../ui.js';
import { statusLabel } from '../casework/sources.js';

const AREA = ['community', 'street', 'district'];
const WEEKS = [1, 2, 3, 4, 6, 8, 12];
const STATES = [
  ['', '全部', 'All'],
  ['proposed', '待研判', 'To decide'],
  ['accepted', '已主动受理', 'Accepted'],
  ['dismissed', '已忽略', 'Dismissed'],
];
const STATE_TONE = { proposed: 'yellow', accepted: 'green', dismissed: 'plain' };
const stateName = (s) => { const x = STATES.find(([k]) => k === s); return x ? t(x[1], x[2]) : s; };
// Why a hotspot is set aside (the server's DismissReason).
const REASONS = [
  ['already_handled', '已处置（根源已解决）', 'Already handled'],
  ['seasonal', '季节性问题', 'Seasonal'],
  ['not_actionable', '非本级可解决', 'Beyond this level'],
  ['other', '其他（须填写说明）', 'Other (say why)'],
];
const reasonName = (r) => { const x = REASONS.find(([k]) => k === r); return x ? t(x[1], x[2]).replace(/（.*）$/, '') : r; };

// Cases per calendar week, oldest first, as small bars (the numbers are read out).
function Weekly({ weekly }) {
  const top = Math.max(1, ...weekly);
  return html`<span class="hs-weekly" role="img"
      aria-label=${t(`每周案件数（由远及近）：${weekly.join('、')}`, `Cases per week, oldest first: ${weekly.join(', ')}`)}>
    ${weekly.map((n) => html`<span class="hs-bar" style=${`height:${Math.round((n / top) * 100)}%`}></span>`)}</span>`;
}

function DismissForm({ spot, onDone, onCancel }) {
  const [reason, setReason] = useState('');
  const [note, setNote] = useState('');
  const [errors, setErrors] = useState({});
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e) => {
    e.preventDefault();
    const bad = {};
    if (!reason) bad.reason = t('请选择忽略的原因', 'Choose why');
    if (reason === 'other' && !note.trim()) bad.note = t('选择“其他”时请填写说明', 'Say why');
    setErrors(bad);
    if (Object.keys(bad).length) return;
    setBusy(true); setError(null);
    try {
      onDone(await api('intake', `/hotspots/${encodeURIComponent(spot.id)}/dismiss`, {
        method: 'POST', body: { reason, note: note.trim() || null },
      }));
    } catch (err) { setError(err); } finally { setBusy(false); }
  };
  const hint = (k, text) => (errors[k] ? html`<span class="field-error">${errors[k]}</span>` : text);
  return html`<form class="form hs-dismiss" onSubmit=${submit} novalidate>
    <${Field} label=${t('忽略原因', 'Reason')} required hint=${hint('reason')}>${(id) => html`
      <select id=${id} value=${reason} aria-invalid=${errors.reason ? 'true' : null}
        onChange=${(e) => { setReason(e.target.value); setErrors({}); }}>
        <option value="">${t('请选择原因', 'Choose a reason')}</option>
        ${REASONS.map(([k, zh, en]) => html`<option value=${k}>${t(zh, en)}</option>`)}
      </select>`}<//>
    <${Field} label=${t('说明', 'Note')} hint=${hint('note', t('选填，最多500字', 'Optional, up to 500 characters'))}>${(id) => html`
      <textarea id=${id} rows="2" maxlength="500" value=${note} aria-invalid=${errors.note ? 'true' : null}
        onInput=${(e) => setNote(e.target.value)}></textarea>`}<//>
    <${ErrorNote} error=${error} />
    <div class="hs-actions">
      <button type="submit" class="danger" disabled=${busy}>${busy ? t('提交中…', 'Sending…') : t('确认忽略', 'Dismiss')}</button>
      <button type="button" class="link" onClick=${onCancel}>${t('取消', 'Cancel')}</button>
    </div>
  </form>`;
}

function Decision({ spot }) {
  const d = spot.decision;
  if (!d) return null;
  return html`<p class="hs-decision small">
    ${spot.state === 'accepted' ? html`${t('已主动受理，', 'Accepted: ')}<a href=${`/cases/${d.case_id}`}>${t(`打开未诉先办案件 ${d.case_no}`, `open the proactive case ${d.case_no}`)}</a>`
      : html`${t('已忽略：', 'Dismissed: ')}${reasonName(d.reason)}${d.note ? t(`（${d.note}）`, ` (${d.note})`) : ''}`}
    <span class="cw-block muted">${d.decided_by_name} · ${fmtTime(d.decided_at)}</span></p>`;
}

function Hotspot({ spot, weeks, canDecide, onChange }) {
  const [dismissing, setDismissing] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const accept = async () => {
    setBusy(true); setError(null);
    try {
      const done = await api('intake', `/hotspots/${encodeURIComponent(spot.id)}/accept`, { method: 'POST' });
      toast(t(`已生成未诉先办案件 ${done.case.case_no}`, `Proactive case ${done.case.case_no} opened`));
      onChange(done);
    } catch (err) { setError(err); } finally { setBusy(false); }
  };
  const headId = `hs-${spot.id.replace(/[^A-Za-z0-9-]/g, '-')}`;
  return html`<li class=${`hs-spot ${spot.state}`} aria-labelledby=${headId}>
    <div class="hs-head">
      <h2 id=${headId} class="hs-title">${areaName(spot.grid_code)} × ${categoryPath(spot.category)}</h2>
      <${Chip} tone=${STATE_TONE[spot.state]}>${stateName(spot.state)}<//>
    </div>
    <p class="muted small">${placeName(spot.area_path)}${spot.location?.address ? ` · ${spot.location.address}` : ''}</p>
    <div class="hs-figures">
      <p class="hs-count"><strong>${spot.case_count}</strong> ${t(`件 / 近${weeks}周`, `cases in ${weeks} weeks`)}</p>
      <${Weekly} weekly=${spot.weekly} />
      <p class="small">${t(`未结案 ${spot.open_cases} 件`, `${spot.open_cases} open`)}
        ${spot.reworked ? html` · <span class="hs-warn">${t(`返工 ${spot.reworked} 件`, `${spot.reworked} reworked`)}</span>` : null}
        ${spot.reopened ? html` · <span class="hs-warn">${t(`重新打开 ${spot.reopened} 件`, `${spot.reopened} reopened`)}</span>` : null}
        <span class="cw-block muted">${fmtTime(spot.first_reported_at, { date: true })} – ${fmtTime(spot.last_reported_at)}</span></p>
    </div>
    <details class="hs-cases">
      <summary>${t(`案件举例（${spot.cases.length}件）`, `Example cases (${spot.cases.length})`)}</summary>
      <ul>${spot.cases.map((c) => html`<li key=${c.id}><a href=${`/cases/${c.id}`}>${c.case_no}</a>
        <span class="muted small"> · ${statusLabel(c.status)} · ${fmtTime(c.reported_at)}</span></li>`)}</ul>
    </details>
    <${Decision} spot=${spot} />
    <${ErrorNote} error=${error} />
    ${canDecide && spot.state === 'proposed' && !dismissing ? html`<div class="hs-actions">
      <button type="button" class="primary" disabled=${busy} onClick=${accept}>
        ${busy ? t('提交中…', 'Sending…') : t('主动受理（生成案件）', 'Accept: open a proactive case')}</button>
      <button type="button" onClick=${() => setDismissing(true)}>${t('忽略…', 'Dismiss…')}</button></div>` : null}
    ${dismissing ? html`<${DismissForm} spot=${spot}
      onDone=${(done) => { toast(t('已忽略该热点', 'Hotspot dismissed')); setDismissing(false); onChange(done); }}
      onCancel=${() => setDismissing(false)} />` : null}
  </li>`;
}

export default function Hotspots({ user }) {
  const [weeks, setWeeks] = useState(4);
  const [state, setState] = useState('');
  const q = useAsync(() => api('intake', '/hotspots', { query: { weeks, state } }), [weeks, state]);
  const canDecide = AREA.includes(user.role);
  // A decided hotspot stays where it is, with its outcome, until the list is loaded again.
  const replace = (done) => q.setData({ ...q.data, hotspots: q.data.hotspots.map((h) => (h.id === done.id ? done : h)) });
  const spots = q.data?.hotspots;
  return html`<${Page} wide title=${t('未诉先办', 'Proactive hotspots')}><div class="hs">
    <p class="muted">${t('同一网格内同类问题反复出现的“热点”：主动受理即生成一件未诉先办案件，从根源上解决；不需处理的说明原因后忽略。',
      'Problems of one kind that keep coming back in one grid: accept one to open a proactive case that fixes the cause, or dismiss it with a reason.')}</p>
    <form class="hs-filters" onSubmit=${(e) => e.preventDefault()} aria-label=${t('筛选', 'Filters')}>
      <${Field} label=${t('统计周数', 'Weeks')}>${(id) => html`
        <select id=${id} value=${weeks} onChange=${(e) => setWeeks(Number(e.target.value))}>
          ${WEEKS.map((w) => html`<option value=${w}>${t(`近${w}周`, `last ${w} weeks`)}</option>`)}
        </select>`}<//>
      <${Field} label=${t('状态', 'State')}>${(id) => html`
        <select id=${id} value=${state} onChange=${(e) => setState(e.target.value)}>
          ${STATES.map(([k, zh, en]) => html`<option value=${k}>${t(zh, en)}</option>`)}
        </select>`}<//>
      <button type="button" onClick=${q.reload} disabled=${q.loading}>${q.loading ? t('刷新中…', 'Refreshing…') : t('刷新', 'Refresh')}</button>
    </form>
    ${q.data ? html`<p class="small muted" role="status">${t(`自 ${fmtTime(q.data.period_start)} 起，同类案件满 ${q.data.min_cases} 件即为热点；共 ${spots.length} 个。`,
      `Since ${fmtTime(q.data.period_start)}; ${q.data.min_cases} cases of a kind make a hotspot; ${spots.length} found.`)}</p>` : null}
    <${ErrorNote} error=${q.error} />
    ${!q.data ? (q.loading ? html`<${Loading} />` : null) : spots.length
      ? html`<ul class="list hs-list" aria-label=${t('热点', 'Hotspots')}>${spots.map((s) => html`<${Hotspot} key=${s.id}
          spot=${s} weeks=${q.data.weeks} canDecide=${canDecide} onChange=${replace} />`)}</ul>`
      : html`<${Empty}>${t('该时段没有热点', 'No hotspot in this period')}<//>`}
  </div><//>`;
}
