// 延期挂账审批 — a supervisor decides the extension (延期) and pause (挂账/缓办) requests of the
// departments working on cases in his area: approve (an extension: all the days asked for or
// fewer; an optional comment) or refuse (a comment is required). Recently decided ones are
// listed below, and a running pause can be ended (恢复办理) from there.
import { html, useEffect, useState } from '../../vendor/preact-htm.mjs';
import { api } from '../api.js';
import { fmtTime, t } from '../i18n.js';
import { categoryPath, deptName, placeName } from '../ref.js';
import { ActionForm, Chip, Deadline, ErrorNote, Field, Loading, Page, toast, useAsync, useNow } from '../ui.js';

const PAGE = 200;
const KIND = { hang: ['挂账', 'Hang (cannot be solved now)'], defer: ['缓办', 'Defer'] };
const kindName = (k) => (KIND[k] ? t(...KIND[k]) : k);

// The assignment behind a request: its case number, category, place and current deadline.
const assignments = new Map();
function assignment(id) {
  if (!assignments.has(id)) {
    assignments.set(id, api('dispatch', `/assignments/${id}`).catch((err) => { assignments.delete(id); return { error: err }; }));
  }
  return assignments.get(id);
}
async function withAssignments(rows) {
  const as = await Promise.all(rows.map((r) => assignment(r.assignment_id)));
  return rows.map((r, i) => ({ ...r, a: as[i] }));
}
const fresh = (rows) => rows.forEach((r) => assignments.delete(r.assignment_id));

// Every page of a listing (the API lists oldest first).
async function all(path, state) {
  const out = [];
  for (let offset = 0; offset < PAGE * 10; offset += PAGE) {
    const rows = await api('dispatch', path, { query: { state, limit: PAGE, offset } });
    out.push(...rows);
    if (rows.length < PAGE) break;
  }
  return out;
}

async function loadPending() {
  const [ext, pauses] = await Promise.all([all('/extension-requests', 'pending'), all('/pause-requests', 'pending')]);
  fresh([...ext, ...pauses]); // their deadlines move: read them again
  return {
    ext: await withAssignments(ext.map((r) => ({ ...r, type: 'extension' }))),
    pauses: await withAssignments(pauses.map((r) => ({ ...r, type: 'pause' }))),
  };
}

async function loadDecided(limit = 20) {
  const lists = await Promise.all([
    ...['approved', 'refused'].map((s) => all('/extension-requests', s).then((rs) => rs.map((r) => ({ ...r, type: 'extension' })))),
    ...['approved', 'refused', 'ended'].map((s) => all('/pause-requests', s).then((rs) => rs.map((r) => ({ ...r, type: 'pause' })))),
  ]);
  const rows = lists.flat().sort((a, b) => (b.decided_at ?? '').localeCompare(a.decided_at ?? '')).slice(0, limit);
  return withAssignments(rows);
}

const caseNo = (r) => r.a?.case_no ?? t('案件', 'Case');
const deptOf = (r) => r.a?.department_name || deptName(r.department_id);

export default function Requests() {
  const pending = useAsync(loadPending, []);
  const decided = useAsync(() => loadDecided(), []);
  const [at, setAt] = useState(Date.now());
  const reload = () => { pending.reload(); decided.reload(); setAt(Date.now()); };
  // new requests arrive while the page is open: look again every minute
  useEffect(() => { const id = setInterval(reload, 60_000); return () => clearInterval(id); }, []);
  const count = pending.data ? pending.data.ext.length + pending.data.pauses.length : null;
  return html`<${Page} wide title=${t('延期挂账审批', 'Extension and pause approvals')}
    actions=${html`<span class="muted small">${t(`更新于 ${fmtTime(at, { date: false, seconds: true })}`, `Updated ${fmtTime(at, { date: false, seconds: true })}`)}</span>
      <button type="button" onClick=${reload}>${t('刷新', 'Refresh')}</button>`}>
    <p class="muted">${count == null ? null : count
      ? t(`共 ${count} 项待审批。延期以工作日计；批准挂账/缓办后，该派单的时限从批准时起暂停计时。`,
        `${count} waiting. Extensions are in working days; an approved pause stops the assignment's clocks from then on.`)
      : t('没有待审批的申请。', 'Nothing waits for a decision.')}</p>
    <${ErrorNote} error=${pending.error} />
    ${pending.loading && !pending.data ? html`<${Loading} />` : null}
    ${pending.data ? html`
      <section aria-labelledby="ext-h" class="kpi-section">
        <h2 id="ext-h">${t(`延期申请（${pending.data.ext.length}）`, `Extension requests (${pending.data.ext.length})`)}</h2>
        ${pending.data.ext.length ? html`<ul class="requests">${pending.data.ext.map((r) => html`<${ExtensionRequest} key=${r.id} r=${r} done=${reload} />`)}</ul>`
          : html`<p class="empty">${t('没有待审批的延期申请', 'No extension request waits')}</p>`}
      </section>
      <section aria-labelledby="pause-h" class="kpi-section">
        <h2 id="pause-h">${t(`挂账/缓办申请（${pending.data.pauses.length}）`, `Pause requests (${pending.data.pauses.length})`)}</h2>
        ${pending.data.pauses.length ? html`<ul class="requests">${pending.data.pauses.map((r) => html`<${PauseRequest} key=${r.id} r=${r} done=${reload} />`)}</ul>`
          : html`<p class="empty">${t('没有待审批的挂账/缓办申请', 'No pause request waits')}</p>`}
      </section>` : null}
    <section aria-labelledby="decided-h" class="kpi-section">
      <h2 id="decided-h">${t('最近处理', 'Recently decided')}</h2>
      <${ErrorNote} error=${decided.error} />
      ${decided.loading && !decided.data ? html`<${Loading} />` : null}
      ${decided.data ? decided.data.length ? html`<ul class="decided card">${decided.data.map((r) => html`<${Decided} key=${r.id} r=${r} done=${reload} />`)}</ul>`
        : html`<p class="empty">${t('还没有处理过的申请', 'Nothing decided yet')}</p>` : null}
    </section>
  <//>`;
}

function CaseLine({ r }) {
  const now = useNow(30_000);
  const a = r.a;
  if (!a || a.error) return html`<p class="muted small">${a?.error?.message ?? ''}</p>`;
  return html`<p class="muted small">${categoryPath(a.category)} · ${placeName(a.area_path)}
    ${a.deadline ? html` · ${a.deadline_label ?? t('时限', 'Deadline')} <${Deadline} due=${a.deadline} overdue=${a.overdue} now=${now} />` : null}
    ${a.paused ? html` · <${Chip} tone="yellow">${a.pause_label}<//>` : null}</p>`;
}

function Head({ r, tone, label, children }) {
  return html`<div class="request-head">
    <a class="case-no" href=${`/cases/${r.case_id}`}>${caseNo(r)}</a>
    <${Chip} tone=${tone}>${label}<//>
    <strong>${deptOf(r)}</strong>
    ${children}
    <span class="muted small">${t(`${r.requested_by} 申请于 ${fmtTime(r.requested_at)}`, `asked by ${r.requested_by} at ${fmtTime(r.requested_at)}`)}</span>
  </div>`;
}

// 驳回: a reason is required; what was typed stays if the server refuses.
function RefuseForm({ onRefuse }) {
  const [refusal, setRefusal] = useState('');
  const submit = async () => {
    if (!refusal.trim()) throw new Error(t('请填写驳回理由', 'Give a reason for refusing'));
    await onRefuse(refusal.trim());
  };
  return html`<${ActionForm} danger onSubmit=${submit} submitLabel=${t('驳回申请', 'Refuse')}>
    <${Field} label=${t('驳回理由', 'Reason for refusing')} required>${(id) => html`
      <textarea id=${id} rows="2" maxlength="2000" value=${refusal} onInput=${(e) => setRefusal(e.target.value)}></textarea>`}<//>
  <//>`;
}

function ExtensionRequest({ r, done }) {
  const [days, setDays] = useState(String(r.days));
  const [comment, setComment] = useState('');
  const approve = async () => {
    const n = Number(days);
    if (!Number.isInteger(n) || n < 1 || n > r.days) {
      throw new Error(t(`批准天数须为 1 到 ${r.days} 之间的整数`, `Approve between 1 and ${r.days} whole days`));
    }
    const res = await api('dispatch', `/extension-requests/${r.id}/approve`, {
      method: 'POST', body: { days: n, ...(comment.trim() ? { comment: comment.trim() } : {}) },
    });
    toast(t(`已批准 ${caseNo(r)} 延期 ${res.granted_days} 个工作日（申请 ${r.days} 个）`,
      `Approved ${res.granted_days} of ${r.days} working days for ${caseNo(r)}`));
    done();
  };
  const refuse = async (refusal) => {
    await api('dispatch', `/extension-requests/${r.id}/refuse`, { method: 'POST', body: { comment: refusal } });
    toast(t(`已驳回 ${caseNo(r)} 的延期申请`, `Refused the extension for ${caseNo(r)}`));
    done();
  };
  return html`<li class="request extension">
    <${Head} r=${r} tone="blue" label=${t('延期', 'Extension')}>
      <span>${t(`申请延期 ${r.days} 个工作日`, `asks for ${r.days} more working days`)}</span><//>
    <${CaseLine} r=${r} />
    <p class="reason"><span class="muted">${t('理由：', 'Reason: ')}</span>${r.reason}</p>
    <div class="decide">
      <${ActionForm} onSubmit=${approve} submitLabel=${t('批准延期', 'Approve extension')}>
        <${Field} label=${t('批准天数（工作日）', 'Days to approve (working days)')}
          hint=${t(`可批准全部 ${r.days} 天或更少`, `all ${r.days} days or fewer`)} required>${(id) => html`
          <input id=${id} type="number" inputmode="numeric" min="1" max=${r.days} step="1" value=${days}
            onInput=${(e) => setDays(e.target.value)} />`}<//>
        <${Field} label=${t('审批意见（可选）', 'Comment (optional)')}>${(id) => html`
          <textarea id=${id} rows="2" maxlength="2000" value=${comment} onInput=${(e) => setComment(e.target.value)}></textarea>`}<//>
      <//>
      <${RefuseForm} onRefuse=${refuse} />
    </div>
  </li>`;
}

function PauseRequest({ r, done }) {
  const [comment, setComment] = useState('');
  const kind = kindName(r.kind);
  const approve = async () => {
    await api('dispatch', `/pause-requests/${r.id}/approve`, {
      method: 'POST', body: comment.trim() ? { comment: comment.trim() } : {},
    });
    toast(t(`已批准 ${caseNo(r)} ${kind}，时限暂停计时`, `Approved: ${caseNo(r)} paused (${kind}), its clocks stand still`));
    done();
  };
  const refuse = async (refusal) => {
    await api('dispatch', `/pause-requests/${r.id}/refuse`, { method: 'POST', body: { comment: refusal } });
    toast(t(`已驳回 ${caseNo(r)} 的${kind}申请`, `Refused the pause for ${caseNo(r)}`));
    done();
  };
  return html`<li class="request pause">
    <${Head} r=${r} tone="yellow" label=${kind}>
      <span>${t(`申请${kind}（时限暂停计时）`, `asks to pause (${kind}): its clocks would stand still`)}</span><//>
    <${CaseLine} r=${r} />
    <p class="reason"><span class="muted">${t('理由：', 'Reason: ')}</span>${r.reason}</p>
    <div class="decide">
      <${ActionForm} onSubmit=${approve} submitLabel=${t(`批准${kind}`, `Approve (${kind})`)}>
        <${Field} label=${t('审批意见（可选）', 'Comment (optional)')}>${(id) => html`
          <textarea id=${id} rows="2" maxlength="2000" value=${comment} onInput=${(e) => setComment(e.target.value)}></textarea>`}<//>
      <//>
      <${RefuseForm} onRefuse=${refuse} />
    </div>
  </li>`;
}

function outcome(r) {
  if (r.type === 'extension') {
    return r.state === 'approved'
      ? [t(`已批准 ${r.granted_days}/${r.days} 个工作日`, `approved ${r.granted_days} of ${r.days} working days`), 'green']
      : [t('已驳回', 'refused'), 'red'];
  }
  if (r.state === 'approved') return [t('已批准，暂停中', 'approved, paused now'), 'yellow'];
  if (r.state === 'ended') return [r.ended_how_label ? t(`已结束（${r.ended_how_label}）`, `ended (${r.ended_how})`) : t('已结束', 'ended'), 'green'];
  return [t('已驳回', 'refused'), 'red'];
}

function Decided({ r, done }) {
  const [resuming, setResuming] = useState(false);
  const [note, setNote] = useState('');
  const [text, tone] = outcome(r);
  const resume = async () => {
    await api('dispatch', `/assignments/${r.assignment_id}/resume`, {
      method: 'POST', body: note.trim() ? { note: note.trim() } : {},
    });
    toast(t(`${caseNo(r)} 已恢复办理，时限顺延`, `${caseNo(r)} resumed; its deadlines moved by the paused time`));
    done();
  };
  return html`<li>
    <a class="case-no" href=${`/cases/${r.case_id}`}>${caseNo(r)}</a>
    <span>${r.type === 'extension' ? t('延期', 'Extension') : kindName(r.kind)}</span>
    <strong>${deptOf(r)}</strong>
    <${Chip} tone=${tone}>${text}<//>
    <span class="muted small">${t(`${r.decided_by ?? ''} 于 ${fmtTime(r.decided_at)} 处理`, `by ${r.decided_by ?? ''} at ${fmtTime(r.decided_at)}`)}</span>
    <span class="small">${t('理由：', 'Reason: ')}${r.reason}</span>
    ${r.comment ? html`<span class="small">${t('意见：', 'Comment: ')}${r.comment}</span>` : null}
    ${r.type === 'pause' && r.state === 'approved' ? html`
      <button type="button" class="link" aria-expanded=${resuming} onClick=${() => setResuming(!resuming)}>
        ${resuming ? t('取消', 'Cancel') : t('恢复办理', 'Resume')}<span class="sr-only"> ${caseNo(r)}</span></button>
      ${resuming ? html`<${ActionForm} onSubmit=${resume} submitLabel=${t('确认恢复办理', 'Resume now')}>
        <${Field} label=${t('恢复说明（可选）', 'Note (optional)')}>${(id) => html`
          <textarea id=${id} rows="2" maxlength="2000" value=${note} onInput=${(e) => setNote(e.target.value)}></textarea>`}<//>
      <//>` : null}` : null}
  </li>`;
}
