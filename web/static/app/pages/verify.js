// 群众上报待核实 — residents' own reports (filed through Open311 without an account) wait for
// the grid's worker to check them on site: accepted (核实属实) the report becomes a case and
// enters the loop; dismissed (不予受理) it is closed with the reason, which the resident reads.
import { html, useState } from '../../vendor/preact-htm.mjs';
import { api } from '../api.js';
import { fmtTime, t } from '../i18n.js';
import { areaName, categoryPath, placeName } from '../ref.js';
import { Chip, Empty, ErrorNote, Field, Loading, Page, toast, useAsync } from '../ui.js';
import { statusLabel } from '../casework/sources.js';

// Why a report is not taken on (the server's DismissReason); the resident reads it.
const REASONS = [
  ['not_found', '现场核实未发现所报问题', 'Not found on site'],
  ['resolved', '现场已解决', 'Already resolved on site'],
  ['duplicate', '重复上报（已有案件）', 'A duplicate of an existing case'],
  ['not_public', '不属于公共事务', 'Not a public matter'],
  ['other', '其他原因（须填写说明）', 'Other (say why)'],
];
const STATES = [
  ['pending', '待核实', 'To verify'],
  ['accepted', '已受理', 'Accepted'],
  ['dismissed', '不予受理', 'Not taken on'],
];

// The number of reports waiting in the caller's grids (for the badge on 我的网格).
export async function pendingCount() {
  const rows = await api('intake', '/resident-reports', { query: { state: 'pending', limit: 200 } });
  return rows.length;
}

// The open cases of the report's grid, as what it may repeat.
async function candidates(report) {
  const rows = await api('intake', '/cases', { query: { area: report.area_path, limit: 50 } });
  return rows.filter((c) => c.id !== report.id && !['to_verify', 'closed'].includes(c.status));
}

function DismissForm({ report, onDone, onCancel }) {
  const [reason, setReason] = useState('');
  const [note, setNote] = useState('');
  const [dup, setDup] = useState('');
  const [errors, setErrors] = useState({});
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const others = useAsync(() => (reason === 'duplicate' ? candidates(report) : Promise.resolve([])), [reason]);

  const submit = async (e) => {
    e.preventDefault();
    const bad = {};
    if (!reason) bad.reason = t('请选择不予受理的原因', 'Choose why it is not taken on');
    if (reason === 'other' && !note.trim()) bad.note = t('选择“其他原因”时请填写说明', 'Say why');
    if (reason === 'duplicate' && !dup) bad.dup = t('请选择它重复的案件', 'Choose the case it repeats');
    setErrors(bad);
    if (Object.keys(bad).length) return;
    setBusy(true); setError(null);
    try {
      const body = { reason, note: note.trim() || null };
      if (reason === 'duplicate') body.duplicate_of = dup;
      onDone(await api('intake', `/resident-reports/${report.id}/dismiss`, { method: 'POST', body }));
    } catch (err) { setError(err); } finally { setBusy(false); }
  };
  const hint = (k, text) => (errors[k] ? html`<span class="field-error">${errors[k]}</span>` : text);
  return html`<form class="form pv-dismiss" onSubmit=${submit} novalidate
      aria-label=${t(`不予受理 ${report.case_no}`, `Not take on ${report.case_no}`)}>
    <${Field} label=${t('不予受理的原因', 'Reason')} required hint=${hint('reason', t('群众将看到此原因', 'The resident reads it'))}>${(id) => html`
      <select id=${id} value=${reason} aria-invalid=${errors.reason ? 'true' : null}
        onChange=${(e) => { setReason(e.target.value); setErrors({}); }}>
        <option value="">${t('请选择原因', 'Choose a reason')}</option>
        ${REASONS.map(([k, zh, en]) => html`<option value=${k}>${t(zh, en)}</option>`)}
      </select>`}<//>
    ${reason === 'duplicate' ? html`<${Field} label=${t('重复的案件', 'The case it repeats')} required hint=${hint('dup')}>${(id) => html`
      <select id=${id} value=${dup} aria-invalid=${errors.dup ? 'true' : null} onChange=${(e) => setDup(e.target.value)}>
        <option value="">${others.loading ? t('加载中…', 'Loading…') : t('请选择案件', 'Choose the case')}</option>
        ${(others.data ?? []).map((c) => html`<option value=${c.id}>${c.case_no} · ${categoryPath(c.category)} · ${c.description.slice(0, 24)}</option>`)}
      </select>`}<//>` : null}
    <${Field} label=${t('说明', 'Note')} hint=${hint('note', t('选填；群众将看到', 'Optional; the resident reads it'))}>${(id) => html`
      <textarea id=${id} rows="2" maxlength="1000" value=${note} aria-invalid=${errors.note ? 'true' : null}
        onInput=${(e) => setNote(e.target.value)}></textarea>`}<//>
    <${ErrorNote} error=${error} />
    <div class="pv-actions">
      <button type="submit" class="danger" disabled=${busy}>${busy ? t('提交中…', 'Sending…') : t('确认不予受理', 'Confirm: not taken on')}</button>
      <button type="button" class="link" onClick=${onCancel}>${t('取消', 'Cancel')}</button>
    </div>
  </form>`;
}

function ReportCard({ r, onChange }) {
  const [mode, setMode] = useState(null); // null | 'dismiss'
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const v = r.verification;
  const accept = async () => {
    setBusy(true); setError(null);
    try {
      const done = await api('intake', `/resident-reports/${r.id}/accept`, { method: 'POST', body: {} });
      toast(t(`已受理，案件 ${done.case_no} 进入办理流程`, `Accepted: case ${done.case_no} is in the loop`));
      onChange(done);
    } catch (err) { setError(err); } finally { setBusy(false); }
  };
  const dismissed = (done) => {
    toast(t(`已不予受理 ${done.case_no}`, `${done.case_no} not taken on`));
    setMode(null);
    onChange(done);
  };
  return html`<li class="pv-report" aria-labelledby=${`pv-${r.id}`}>
    <div class="pv-head">
      <h2 id=${`pv-${r.id}`} class="pv-no">${r.case_no}</h2>
      <${Chip} tone=${v.state === 'pending' ? 'yellow' : v.state === 'accepted' ? 'green' : 'plain'}>${
        v.state === 'pending' ? statusLabel('to_verify') : t(...STATES.find(([k]) => k === v.state).slice(1))}<//>
    </div>
    <p class="pv-cat">${categoryPath(r.category)}</p>
    <blockquote class="pv-text">${r.description}</blockquote>
    <dl class="pv-facts small">
      <dt>${t('地点', 'Where')}</dt><dd>${areaName(r.grid_code)}${r.location?.address ? ` · ${r.location.address}` : ''}
        <span class="cw-block muted">${placeName(r.area_path)}</span></dd>
      <dt>${t('上报时间', 'When')}</dt><dd>${fmtTime(v.received_at)}</dd>
      <dt>${t('上报人', 'Who')}</dt><dd>${r.reporter}${v.contact ? html` · <span class="muted">${v.contact}</span>` : null}</dd>
      ${v.state !== 'pending' ? html`<dt>${t('核实', 'Checked')}</dt><dd>${v.decided_by_name ?? '—'} · ${fmtTime(v.decided_at)}
        ${v.reason ? html`<span class="cw-block">${t(...(REASONS.find(([k]) => k === v.reason) ?? [null, v.reason_label, v.reason_label]).slice(1))}${v.duplicate_case_no ? t(`（原案件 ${v.duplicate_case_no}）`, ` (${v.duplicate_case_no})`) : ''}</span>` : null}
        ${v.note ? html`<span class="cw-block muted">${v.note}</span>` : null}</dd>` : null}
    </dl>
    <${ErrorNote} error=${error} />
    ${v.state === 'pending' && mode !== 'dismiss' ? html`<div class="pv-actions">
      <button type="button" class="primary" disabled=${busy} onClick=${accept}>
        ${busy ? t('提交中…', 'Sending…') : t('核实属实，受理', 'Verified: take it on')}</button>
      <button type="button" onClick=${() => setMode('dismiss')}>${t('不予受理…', 'Not take on…')}</button>
    </div>` : null}
    ${mode === 'dismiss' ? html`<${DismissForm} report=${r} onDone=${dismissed} onCancel=${() => setMode(null)} />` : null}
    ${v.state === 'accepted' ? html`<p><a href=${`/cases/${r.id}`}>${t(`打开案件 ${r.case_no}`, `Open case ${r.case_no}`)} →</a></p>` : null}
  </li>`;
}

export default function Verify() {
  const [state, setState] = useState('pending');
  const q = useAsync(() => api('intake', '/resident-reports', { query: { state, limit: 100 } }), [state]);
  // A decided report stays in view (with its outcome) until the list is loaded again.
  const replace = (done) => q.setData((q.data ?? []).map((x) => (x.id === done.id ? done : x)));
  return html`<${Page} title=${t('群众上报待核实', 'Residents’ reports to verify')}><div class="wk pv">
    <p class="muted small">${t('群众通过“随手拍”等渠道上报的问题，请到现场核实：属实即受理，案件进入办理流程；不属实或不属于公共事务的，说明原因后不予受理，群众将看到原因。',
      'Residents report problems without an account; check each on site: take it on and it enters the loop, or say why not — the resident reads the reason.')}</p>
    <div class="case-filters pv-states" role="group" aria-label=${t('核实状态', 'State')}>
      ${STATES.map(([k, zh, en]) => html`<button type="button" key=${k} class=${`case-filter${state === k ? ' on' : ''}`}
        aria-pressed=${state === k} onClick=${() => setState(k)}><span class="l">${t(zh, en)}</span></button>`)}
      <button type="button" class="case-filter" onClick=${q.reload} disabled=${q.loading}>
        <span class="l">${q.loading ? t('刷新中…', 'Refreshing…') : t('刷新', 'Refresh')}</span></button>
    </div>
    <${ErrorNote} error=${q.error} />
    ${q.data === undefined ? html`<${Loading} />` : q.data.length
      ? html`<ul class="list pv-list" aria-label=${t('群众上报', 'Residents’ reports')}>
          ${q.data.map((r) => html`<${ReportCard} key=${r.id} r=${r} onChange=${replace} />`)}</ul>`
      : html`<${Empty}>${state === 'pending' ? t('没有待核实的群众上报', 'No resident report waits for you') : t('暂无记录', 'Nothing here')}<//>`}
  </div><//>`;
}
