// 派单详情 (one assignment): the case as the department needs it, its photos, deadline,
// progress notes, extension and pause requests, and what the department can do now —
// 报到, 退单, 转办, 办理进展, 延期, 挂账/缓办, 恢复办理, 办结 with after-photos. Supervisors,
// communities, streets and the district read it without the actions.
import { html, useEffect, useRef, useState } from '../../vendor/preact-htm.mjs';
import { api, imageUrl } from '../api.js';
import { fmtTime, t } from '../i18n.js';
import {
  assignmentStateName, categoryPath, clockName, deptName, placeName, priorityName, ref,
} from '../ref.js';
import {
  ActionForm, Chip, Deadline, ErrorNote, Field, Loading, Page, PhotoPick, toast, useAsync, useNow,
} from '../ui.js';
import {
  PausedChip, StreamState, consolePath, messageTitle, roleLabel, stateTone, useDeskStream,
} from './inbox.js';
import { isId, Lookup } from '../casework/lookup.js';

const BASIS = {
  named: ['吹哨点名', 'Named in the whistle'], rule: ['派单规则', 'Routing rule'],
  area_default: ['分类默认责任主体', "Category's default body"], liaison: ['包联单位', 'Liaison unit'],
  manual: ['人工派单', 'Manual dispatch'], transfer: ['转办', 'Transfer'], rework: ['返工', 'Rework'],
};
const REQUEST_STATE = {
  pending: ['待审批', 'Pending', 'yellow'], approved: ['已批准', 'Approved', 'green'],
  refused: ['已驳回', 'Refused', 'red'], ended: ['已结束', 'Ended', 'plain'],
};
const PAUSE_KIND = { hang: ['挂账', 'On hold (挂账)'], defer: ['缓办', 'Deferred (缓办)'] };
const PAUSE_END = {
  resumed: ['恢复办理', 'resumed'], resolved: ['随办结结束', 'ended by resolution'],
  transferred: ['随转办结束', 'ended by transfer'],
};
const MAX_PHOTOS = 9;
const MAX_PHOTO_BYTES = 5 * 1024 * 1024;
const SYNC_PATIENCE_MS = 20_000;

const term = (table, key) => (table[key] ? t(table[key][0], table[key][1]) : key ?? '—');

// --- photos --------------------------------------------------------------------------------

function Photo({ photo, label }) {
  const [src, setSrc] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => {
    let live = true;
    imageUrl('intake', photo.url).then((u) => live && setSrc(u)).catch((e) => live && setError(e));
    return () => { live = false; };
  }, [photo.url]);
  if (error) return html`<span class="error small">${t('照片加载失败', 'Photo failed to load')}</span>`;
  if (!src) return html`<span class="dept-photo-wait" role="img" aria-label=${t('照片加载中', 'Loading photo')}></span>`;
  return html`<a href=${src} target="_blank" rel="noopener"><img src=${src} alt=${label} width="120" height="120" /></a>`;
}

function Photos({ photos, kind, title, cited }) {
  const mine = (photos ?? []).filter((p) => p.kind === kind);
  return html`<div class="dept-photos">
    <h3>${title} <span class="muted small">(${mine.length})</span></h3>
    ${mine.length ? html`<ul class="thumbs">${mine.map((p, i) => html`<li key=${p.id}>
      <${Photo} photo=${p} label=${`${title} ${i + 1}，${fmtTime(p.uploaded_at)}`} />
      <span class="muted small">${fmtTime(p.uploaded_at)}${p.uploaded_by_department ? ` · ${deptName(p.uploaded_by_department)}` : ''}</span>
      ${cited?.includes(p.id) ? html`<${Chip} tone="green">${t('办结引用', 'Cited in result')}<//>` : null}
    </li>`)}</ul>` : html`<p class="muted small">${t('暂无', 'None')}</p>`}
  </div>`;
}

// After-photos to resolve with: each one uploaded on its own (its failure shown, retried by
// itself), kept across a failed resolve so nothing is sent twice or lost.
function AfterPhotos({ items, setItems, disabled, onRetry }) {
  const add = (files) => {
    const room = MAX_PHOTOS - items.length;
    const picked = [...files].slice(0, Math.max(room, 0));
    const next = picked.map((file) => ({
      key: `${file.name}-${file.size}-${file.lastModified}-${Math.random()}`, file,
      url: URL.createObjectURL(file),
      status: file.size > MAX_PHOTO_BYTES ? 'failed' : 'waiting', photoId: null,
      error: file.size > MAX_PHOTO_BYTES ? t('照片超过 5 MB', 'Photo larger than 5 MB') : null,
    }));
    if (files.length > picked.length) toast(t(`最多 ${MAX_PHOTOS} 张照片`, `At most ${MAX_PHOTOS} photos`), 'error');
    setItems([...items, ...next]);
  };
  const remove = (key) => {
    const gone = items.find((x) => x.key === key);
    if (gone) URL.revokeObjectURL(gone.url);
    setItems(items.filter((x) => x.key !== key));
  };
  const words = {
    waiting: [t('待上传', 'To upload'), 'plain'], uploading: [t('上传中…', 'Uploading…'), 'blue'],
    done: [t('已上传', 'Uploaded'), 'green'], failed: [t('上传失败', 'Upload failed'), 'red'],
  };
  return html`<${Field} label=${t('整改后照片', 'After-photos')}
      hint=${t(`JPEG/PNG/WebP，每张不超过 5 MB，最多 ${MAX_PHOTOS} 张；办结时逐张上传`, `JPEG/PNG/WebP, up to 5 MB each, at most ${MAX_PHOTOS}; uploaded one by one when you resolve`)}>
    ${(id) => html`<${PhotoPick} id=${id} count=${items.length} max=${MAX_PHOTOS} disabled=${disabled}
      camera=${false} onFiles=${add} />
    ${items.length ? html`<ul class="thumbs dept-uploads">${items.map((x, i) => html`<li key=${x.key}>
      <img src=${x.url} alt=${t(`整改后照片 ${i + 1}`, `After-photo ${i + 1}`)} />
      <${Chip} tone=${words[x.status][1]}>${words[x.status][0]}<//>
      ${x.error ? html`<span class="error small" role="alert">${x.error.message ?? x.error}</span>` : null}
      ${x.status === 'failed' && x.file.size <= MAX_PHOTO_BYTES ? html`<button type="button" class="link" disabled=${disabled}
        onClick=${() => onRetry(x.key)}>${t('重试上传', 'Retry upload')}<span class="sr-only"> ${i + 1}</span></button>` : null}
      ${x.status !== 'uploading' ? html`<button type="button" class="link" disabled=${disabled}
        onClick=${() => remove(x.key)}>${t('移除', 'Remove')}<span class="sr-only"> ${t(`照片 ${i + 1}`, `photo ${i + 1}`)}</span></button>` : null}
    </li>`)}</ul>` : null}`}
  <//>`;
}

// --- the actions -----------------------------------------------------------------------------

function needed(value, zh, en) {
  if (!String(value ?? '').trim()) throw new Error(t(zh, en));
  return String(value).trim();
}

function SignFor({ a, act }) {
  return html`<section class="card dept-act" aria-labelledby="act-sign">
    <h2 id="act-sign">${t('报到（签收）', 'Sign for it (报到)')}</h2>
    <p class="muted">${t('签收后开始办理；如不属于本部门职责，请在签收前退单。', 'Sign for it to start handling; if it is not your department’s, reject it before signing for.')}</p>
    <${ActionForm} submitLabel=${t('报到', 'Sign for')}
      onSubmit=${() => act('/sign-for', {}, t('已报到，开始办理', 'Signed for: now in hand'))} />
  </section>`;
}

function Reject({ a, act }) {
  const [reason, setReason] = useState('');
  return html`<details class="card dept-act"><summary>${t('退单（不属于本部门职责）', 'Reject (not our job)')}</summary>
    <${ActionForm} danger submitLabel=${t('退单', 'Reject')} onSubmit=${async () => {
      const r = needed(reason, '请填写退单理由', 'Give the reason for rejecting');
      await act('/reject', { reason: r }, t('已退单，案件将改派', 'Rejected: the case is routed on'));
      setReason('');
    }}>
      <${Field} label=${t('退单理由', 'Reason')} required hint=${t('说明为何不属于本部门，便于改派', 'Why it is not yours, so it can be routed right')}>${(id) => html`
        <textarea id=${id} value=${reason} maxlength="2000" onInput=${(e) => setReason(e.target.value)} required></textarea>`}<//>
    <//>
  </details>`;
}

function Transfer({ a, act }) {
  const [to, setTo] = useState('');
  const [reason, setReason] = useState('');
  const others = ref.departments.filter((d) => d.id !== a.department_id)
    .sort((x, y) => x.name.localeCompare(y.name, 'zh-CN'));
  return html`<details class="card dept-act"><summary>${t('转办给其他部门', 'Transfer to another department')}</summary>
    <${ActionForm} submitLabel=${t('转办', 'Transfer')} onSubmit=${async () => {
      if (!to) throw new Error(t('请选择转办的部门', 'Choose the department to transfer to'));
      const r = needed(reason, '请填写转办理由', 'Give the reason for the transfer');
      await act('/transfer', { to_department_id: to, reason: r }, t(`已转办至${deptName(to)}`, `Transferred to ${deptName(to)}`));
      setTo(''); setReason('');
    }}>
      <${Field} label=${t('转给哪个部门', 'To department')} required>${(id) => html`
        <select id=${id} value=${to} onChange=${(e) => setTo(e.target.value)} required>
          <option value="">${t('请选择', 'Choose')}</option>
          ${others.map((d) => html`<option value=${d.id}>${d.name}</option>`)}
        </select>`}<//>
      <${Field} label=${t('转办理由', 'Reason')} required>${(id) => html`
        <textarea id=${id} value=${reason} maxlength="2000" onInput=${(e) => setReason(e.target.value)} required></textarea>`}<//>
    <//>
  </details>`;
}

function Progress({ act }) {
  const [note, setNote] = useState('');
  return html`<section class="card dept-act" aria-labelledby="act-progress">
    <h2 id="act-progress">${t('办理进展', 'Progress note')}</h2>
    <${ActionForm} submitLabel=${t('提交进展', 'Add note')} onSubmit=${async () => {
      const n = needed(note, '请填写办理进展', 'Write the progress note');
      await act('/progress', { note: n }, t('已记录办理进展', 'Progress note added'));
      setNote('');
    }}>
      <${Field} label=${t('进展说明', 'Note')} required hint=${t('如：已到场、已联系业主、正在施工', 'e.g. on site, owner contacted, work under way')}>${(id) => html`
        <textarea id=${id} value=${note} maxlength="2000" onInput=${(e) => setNote(e.target.value)} required></textarea>`}<//>
    <//>
  </section>`;
}

function Extension({ a, act }) {
  const [days, setDays] = useState('3');
  const [reason, setReason] = useState('');
  const pending = a.extensions.find((e) => e.state === 'pending');
  return html`<details class="card dept-act"><summary>${t('申请延期', 'Ask for more time (延期)')}</summary>
    ${pending ? html`<p class="muted">${t(`已有一份延期申请（${pending.days} 个工作日）待审批，审批后才能再次申请。`,
      `An extension request (${pending.days} working days) is waiting for a decision.`)}</p>`
    : html`<${ActionForm} submitLabel=${t('提交延期申请', 'Ask for more time')} onSubmit=${async () => {
      const n = Number(days);
      if (!Number.isInteger(n) || n < 1 || n > 30) throw new Error(t('延期天数应为 1–30 个工作日', 'Days must be 1–30 working days'));
      const r = needed(reason, '请填写延期理由', 'Give the reason');
      await act('/extensions', { days: n, reason: r }, t('延期申请已提交，等待督办审批', 'Extension requested: waiting for the supervisor'));
      setReason('');
    }}>
      <${Field} label=${t('延期工作日数', 'Working days')} required hint=${t('1–30 个工作日', '1–30 working days')}>${(id) => html`
        <input id=${id} type="number" min="1" max="30" step="1" inputmode="numeric" value=${days}
          onInput=${(e) => setDays(e.target.value)} required />`}<//>
      <${Field} label=${t('延期理由', 'Reason')} required>${(id) => html`
        <textarea id=${id} value=${reason} maxlength="2000" onInput=${(e) => setReason(e.target.value)} required></textarea>`}<//>
    <//>`}
  </details>`;
}

function Pause({ a, act }) {
  const [kind, setKind] = useState('hang');
  const [reason, setReason] = useState('');
  const pending = a.pauses.find((p) => p.state === 'pending');
  return html`<details class="card dept-act"><summary>${t('申请挂账/缓办', 'Ask for a pause (挂账/缓办)')}</summary>
    ${pending ? html`<p class="muted">${t(`已有一份${term(PAUSE_KIND, pending.kind)}申请待审批。`, `A ${term(PAUSE_KIND, pending.kind)} request is waiting for a decision.`)}</p>`
    : html`<${ActionForm} submitLabel=${t('提交申请', 'Ask for the pause')} onSubmit=${async () => {
      const r = needed(reason, '请填写理由', 'Give the reason');
      await act('/pauses', { kind, reason: r }, t(`${term(PAUSE_KIND, kind)}申请已提交，等待督办审批`, `${term(PAUSE_KIND, kind)} requested: waiting for the supervisor`));
      setReason('');
    }}>
      <fieldset><legend>${t('类型', 'Kind')}</legend><div class="choices">
        <label><input type="radio" name="pause-kind" value="hang" checked=${kind === 'hang'} onChange=${() => setKind('hang')} />
          ${t('挂账（暂时无法解决）', 'Hang (cannot be solved now)')}</label>
        <label><input type="radio" name="pause-kind" value="defer" checked=${kind === 'defer'} onChange=${() => setKind('defer')} />
          ${t('缓办（暂缓办理）', 'Defer (put off)')}</label>
      </div></fieldset>
      <${Field} label=${t('理由', 'Reason')} required hint=${t('批准后时限暂停计时，恢复办理后继续', 'Once approved the clocks stand still until the work resumes')}>${(id) => html`
        <textarea id=${id} value=${reason} maxlength="2000" onInput=${(e) => setReason(e.target.value)} required></textarea>`}<//>
    <//>`}
  </details>`;
}

function Resume({ a, act }) {
  const [note, setNote] = useState('');
  return html`<section class="card dept-act" aria-labelledby="act-resume">
    <h2 id="act-resume">${t('恢复办理', 'Resume the work')}</h2>
    <p class="muted">${t(`本派单${a.pause_kind === 'defer' ? '缓办' : '挂账'}中，时限暂停计时${a.paused_since ? `（自 ${fmtTime(a.paused_since)} 起）` : ''}。恢复后时限继续计时并相应顺延。`,
      `This assignment is paused; its clocks stand still${a.paused_since ? ` (since ${fmtTime(a.paused_since)})` : ''}. Resuming runs them again, moved by the time paused.`)}</p>
    <${ActionForm} submitLabel=${t('恢复办理', 'Resume')} onSubmit=${async () => {
      await act('/resume', note.trim() ? { note: note.trim() } : {}, t('已恢复办理，时限继续计时', 'Resumed: the clocks run again'));
      setNote('');
    }}>
      <${Field} label=${t('说明（可选）', 'Note (optional)')}>${(id) => html`
        <textarea id=${id} value=${note} maxlength="2000" onInput=${(e) => setNote(e.target.value)}></textarea>`}<//>
    <//>
  </section>`;
}

function Resolve({ a, act }) {
  const [result, setResult] = useState('');
  const [items, setItems] = useState([]);
  const [busy, setBusy] = useState(false);
  const [syncing, setSyncing] = useState(false);

  const upload = async (x) => {
    const form = new FormData();
    form.append('file', x.file, x.file.name || 'photo');
    try {
      const photo = await api('intake', `/cases/${a.case_id}/photos`, { method: 'POST', query: { kind: 'after' }, form });
      return { ...x, status: 'done', photoId: photo.id, error: null };
    } catch (error) {
      return { ...x, status: 'failed', error };
    }
  };
  // one photo at a time, each result shown as it comes
  const uploadAll = async (list, only) => {
    let current = list;
    for (const x of list) {
      if (x.status === 'done' || (only && x.key !== only) || x.file.size > MAX_PHOTO_BYTES) continue;
      current = current.map((y) => (y.key === x.key ? { ...y, status: 'uploading', error: null } : y));
      setItems(current);
      const done = await upload(x);
      current = current.map((y) => (y.key === x.key ? done : y));
      setItems(current);
    }
    return current;
  };
  // Dispatch learns of a new photo from intake's case.photo_added event, a moment after the
  // upload: a photo it has not heard of yet (unknown_photo) is cited again shortly, for a while.
  const resolveWhenSynced = async (body) => {
    const started = Date.now();
    try {
      for (let wait = 500; ; wait = Math.min(wait * 2, 4000)) {
        try {
          return await act('/resolve', body, t('已办结，等待社区核查', 'Resolved: the community will verify it'));
        } catch (err) {
          if (err.code !== 'unknown_photo' || !body.photo_ids.length || Date.now() - started > SYNC_PATIENCE_MS) throw err;
          setSyncing(true);
          await new Promise((done) => setTimeout(done, wait));
        }
      }
    } finally { setSyncing(false); }
  };
  const retry = async (key) => {
    setBusy(true);
    try {
      const after = await uploadAll(items, key);
      const x = after.find((y) => y.key === key);
      if (x?.status === 'done') toast(t('照片已上传', 'Photo uploaded'));
    } finally { setBusy(false); }
  };

  return html`<section class="card dept-act dept-resolve" aria-labelledby="act-resolve">
    <h2 id="act-resolve">${t('办结', 'Resolve')}</h2>
    <${ActionForm} submitLabel=${t('上传照片并办结', 'Upload photos and resolve')} onSubmit=${async () => {
      const r = needed(result, '请填写办理结果', 'Write the result');
      setBusy(true);
      try {
        const after = await uploadAll(items);
        const failed = after.filter((x) => x.status !== 'done');
        if (failed.length) {
          throw new Error(t(`${failed.length} 张照片未能上传，请重试或移除后再办结`,
            `${failed.length} photo(s) could not be uploaded: retry or remove them, then resolve`));
        }
        await resolveWhenSynced({ result: r, photo_ids: after.map((x) => x.photoId) });
        after.forEach((x) => URL.revokeObjectURL(x.url));
        setItems([]); setResult('');
      } finally { setBusy(false); }
    }}>
      <${Field} label=${t('办理结果', 'Result')} required hint=${t('写明如何处置、现场现状', 'What was done and how the place looks now')}>${(id) => html`
        <textarea id=${id} value=${result} maxlength="2000" onInput=${(e) => setResult(e.target.value)} required></textarea>`}<//>
      <${AfterPhotos} items=${items} setItems=${setItems} disabled=${busy} onRetry=${retry} />
      ${syncing ? html`<p class="muted" role="status">${t('照片已上传，正在同步到派单，稍候自动办结…', 'Photos uploaded; waiting for them to reach the assignment, then resolving…')}</p>` : null}
    <//>
  </section>`;
}

// --- read-only parts -------------------------------------------------------------------------

function Facts({ a, place, now }) {
  return html`<section class="card" aria-labelledby="facts-h">
    <h2 id="facts-h">${t('案件信息', 'The case')}</h2>
    <dl class="facts">
      <dt>${t('案件编号', 'Case number')}</dt><dd>${a.case_no}</dd>
      <dt>${t('分类', 'Category')}</dt><dd>${categoryPath(a.category)}</dd>
      <dt>${t('位置', 'Place')}</dt><dd>${placeName(a.area_path)}${place ? html`<br /><span>${place}</span>` : null}</dd>
      <dt>${t('紧急程度', 'Priority')}</dt><dd>${a.priority === 'urgent'
        ? html`<${Chip} tone="red">${priorityName(a.priority)}<//>` : priorityName(a.priority)}</dd>
      <dt>${t('问题描述', 'Description')}</dt><dd class="dept-text">${a.description}</dd>
      ${a.note ? html`<dt>${t('派单说明', 'Dispatch note')}</dt><dd class="dept-text">${a.note}</dd>` : null}
      <dt>${t('承办部门', 'Department')}</dt><dd>${deptName(a.department_id)}（${roleLabel(a.role)}）</dd>
      <dt>${t('派单依据', 'Chosen by')}</dt><dd>${term(BASIS, a.basis)}</dd>
      <dt>${t('状态', 'State')}</dt><dd><${Chip} tone=${stateTone(a.state)}>${assignmentStateName(a.state)}<//>
        ${a.paused ? html` <${PausedChip} a=${a} />` : null}</dd>
      <dt>${t('当前时限', 'Deadline')}</dt><dd>${a.paused ? t('计时已暂停', 'Clock stopped')
        : a.deadline ? html`${clockName(a.deadline_clock)} <${Deadline} due=${a.deadline} overdue=${a.overdue} now=${now} />`
          : html`<span class="muted">${t('无正在计时的时限', 'No clock running')}</span>`}</dd>
      ${a.urge_count ? html`<dt>${t('督办', 'Urged')}</dt><dd><${Chip} tone="red">${t(`督办 ${a.urge_count} 次`, `Urged ${a.urge_count}×`)}<//>
        ${a.last_urged_at ? html` <span class="muted small">${t(`最近 ${fmtTime(a.last_urged_at)}`, `last ${fmtTime(a.last_urged_at)}`)}</span>` : null}</dd>` : null}
      <dt>${t('派单时间', 'Dispatched')}</dt><dd>${fmtTime(a.dispatched_at)}</dd>
      ${a.signed_for_at ? html`<dt>${t('报到时间', 'Signed for')}</dt><dd>${fmtTime(a.signed_for_at)}</dd>` : null}
      ${a.resolved_at ? html`<dt>${t('办结时间', 'Resolved')}</dt><dd>${fmtTime(a.resolved_at)}</dd>` : null}
      ${a.result ? html`<dt>${t('办理结果', 'Result')}</dt><dd class="dept-text">${a.result}</dd>` : null}
      ${a.exit_reason ? html`<dt>${a.state === 'transferred' ? t('转办理由', 'Transfer reason') : t('退单理由', 'Rejection reason')}</dt>
        <dd class="dept-text">${a.exit_reason}${a.exited_at ? html` <span class="muted small">(${fmtTime(a.exited_at)})</span>` : null}</dd>` : null}
      ${a.transferred_to ? html`<dt>${t('转至', 'Transferred to')}</dt><dd>${deptName(a.transferred_to)}</dd>` : null}
    </dl>
  </section>`;
}

function Notes({ notes }) {
  return html`<section class="card" aria-labelledby="notes-h">
    <h2 id="notes-h">${t('办理进展', 'Progress')}</h2>
    ${notes.length ? html`<ol class="timeline">${notes.map((n) => html`<li key=${n.id}>
      <div class="muted small">${fmtTime(n.created_at)} · ${n.actor_name ?? n.actor_subject}</div>
      <div class="dept-text">${n.note}</div></li>`)}</ol>`
    : html`<p class="muted">${t('暂无办理进展', 'No progress notes yet')}</p>`}
  </section>`;
}

function RequestState({ state }) {
  const [zh, en, tone] = REQUEST_STATE[state] ?? [state, state, 'plain'];
  return html`<${Chip} tone=${tone}>${t(zh, en)}<//>`;
}

function Requests({ a }) {
  if (!a.extensions.length && !a.pauses.length) return null;
  return html`<section class="card" aria-labelledby="req-h">
    <h2 id="req-h">${t('延期与挂账/缓办申请', 'Extension and pause requests')}</h2>
    <ul class="list dept-requests">
      ${a.extensions.map((e) => html`<li key=${e.id}>
        <div class="row"><span class="title">${t(`延期 ${e.days} 个工作日`, `Extension: ${e.days} working days`)}</span>
          <${RequestState} state=${e.state} /><span class="muted small">${fmtTime(e.requested_at)}</span></div>
        <div class="dept-text">${t('理由：', 'Reason: ')}${e.reason}</div>
        ${e.decided_at ? html`<div class="small">${e.state === 'approved'
          ? t(`${fmtTime(e.decided_at)} 批准 ${e.granted_days ?? e.days} 个工作日`, `${fmtTime(e.decided_at)}: ${e.granted_days ?? e.days} working days granted`)
          : t(`${fmtTime(e.decided_at)} 驳回`, `${fmtTime(e.decided_at)}: refused`)}
          ${e.comment ? html`${t('，意见：', '; comment: ')}${e.comment}` : null}</div>` : null}
      </li>`)}
      ${a.pauses.map((p) => html`<li key=${p.id}>
        <div class="row"><span class="title">${term(PAUSE_KIND, p.kind)}</span>
          <${RequestState} state=${p.state} /><span class="muted small">${fmtTime(p.requested_at)}</span></div>
        <div class="dept-text">${t('理由：', 'Reason: ')}${p.reason}</div>
        ${p.decided_at ? html`<div class="small">${p.state === 'refused'
          ? t(`${fmtTime(p.decided_at)} 驳回`, `${fmtTime(p.decided_at)}: refused`)
          : t(`${fmtTime(p.decided_at)} 批准，时限暂停计时`, `${fmtTime(p.decided_at)}: approved, clocks stopped`)}
          ${p.comment ? html`${t('，意见：', '; comment: ')}${p.comment}` : null}</div>` : null}
        ${p.ended_at ? html`<div class="small">${t(`${fmtTime(p.ended_at)} ${term(PAUSE_END, p.ended_how)}`, `${fmtTime(p.ended_at)}: ${term(PAUSE_END, p.ended_how)}`)}
          ${p.end_note ? html`${t('，说明：', '; note: ')}${p.end_note}` : null}</div>` : null}
      </li>`)}
    </ul>
  </section>`;
}

// --- the page --------------------------------------------------------------------------------

// /assignments/<id>; a case number pasted here finds the case (for a department, its assignment)
export default function Assignment({ params, user }) {
  return isId(params.id) ? html`<${AssignmentView} params=${params} user=${user} />`
    : html`<${Lookup} no=${params.id} user=${user} what="assignment" />`;
}

function AssignmentView({ params, user }) {
  const id = params.id;
  const now = useNow(15_000);
  const detail = useAsync(() => api('dispatch', `/assignments/${encodeURIComponent(id)}`), [id]);
  const a = detail.data;
  const caseId = a?.case_id;
  // once the department rejected or transferred it, intake no longer shows it the photos (403)
  const left = user.role === 'department' && (a?.state === 'rejected' || a?.state === 'transferred');
  const photos = useAsync(() => (caseId && !left ? api('intake', `/cases/${caseId}/photos`) : Promise.resolve(undefined)), [caseId, left]);
  // the address the grid worker gave, from the case's history (when it may be read)
  const history = useAsync(() => (caseId ? api('tracking', `/cases/${caseId}/timeline`).catch(() => null) : Promise.resolve(null)), [caseId]);
  const place = history.data?.events?.find((e) => e.type === 'case.reported')?.payload?.location?.address ?? null;

  const mine = user.role === 'department' && a && user.department_id === a.department_id;
  const stream = useDeskStream(mine ? user.department_id : null, (m) => {
    const path = consolePath(m.link);
    if (path === `/assignments/${id}` || m.case_id === caseId) {
      toast(messageTitle(m));
      detail.reload();
      photos.reload();
    }
  });

  // What an action sets off elsewhere (tracking's new deadlines after 报到, 延期 or 恢复办理)
  // reaches dispatch a moment later and brings no desk message: look again shortly after.
  const followUps = useRef([]);
  useEffect(() => () => followUps.current.forEach(clearTimeout), []);
  const act = async (path, body, done) => {
    await api('dispatch', `/assignments/${encodeURIComponent(id)}${path}`, { method: 'POST', body });
    toast(done);
    await Promise.all([detail.reload(), photos.reload()]);
    followUps.current.forEach(clearTimeout);
    followUps.current = [1500, 4000, 10000].map((ms) => setTimeout(() => detail.reload(), ms));
  };

  if (detail.error && !a) {
    return html`<${Page} title=${t('派单详情', 'Assignment')}>
      <${ErrorNote} error=${detail.error} />
      <p><a href=${user.role === 'department' ? '/inbox' : '/board'}>${t('返回', 'Back')}</a></p><//>`;
  }
  if (!a) return html`<${Page} title=${t('派单详情', 'Assignment')}><${Loading} /><//>`;

  const open = a.state === 'dispatched' || a.state === 'signed_for';
  return html`<${Page} wide title=${t(`派单 ${a.case_no}`, `Assignment ${a.case_no}`)}
    actions=${html`${mine ? html`<${StreamState} state=${stream} />` : null}
      <a class="dept-button" href=${`/cases/${a.case_id}`}>${t('查看案件全貌', 'Open the case')}</a>
      ${user.role === 'department' ? html`<a class="dept-button" href="/inbox">${t('返回待办', 'Back to inbox')}</a>` : null}`}>
    ${detail.error ? html`<${ErrorNote} error=${detail.error} />` : null}
    ${!mine ? html`<p class="dept-readonly" role="note">${t('只读：仅承办部门可以办理此派单。', 'Read only: only the assigned department acts on this assignment.')}</p>` : null}
    <div class=${mine ? 'dept-layout' : 'dept-layout dept-single'}>
      <div class="dept-main">
        <${Facts} a=${a} place=${place} now=${now} />
        <section class="card" aria-labelledby="photos-h">
          <h2 id="photos-h">${t('现场照片', 'Photos')}</h2>
          ${left ? html`<p class="muted">${t('本部门已退单或转办此派单，照片不再显示。', 'Your department rejected or transferred this assignment: its photos are no longer shown.')}</p>`
          : photos.error ? html`<${ErrorNote} error=${photos.error} />` : null}
          ${left ? null : photos.loading && photos.data === undefined ? html`<${Loading} />` : html`
            <${Photos} photos=${photos.data} kind="before" title=${t('整改前', 'Before')} />
            <${Photos} photos=${photos.data} kind="after" title=${t('整改后', 'After')} cited=${a.photo_ids} />`}
        </section>
        <${Notes} notes=${a.notes} />
        <${Requests} a=${a} />
      </div>
      ${mine && open ? html`<div class="dept-side dept-actions">
        ${a.state === 'dispatched' ? html`<${SignFor} a=${a} act=${act} /><${Reject} a=${a} act=${act} /><${Transfer} a=${a} act=${act} />` : null}
        ${a.state === 'signed_for' ? html`
          ${a.paused ? html`<${Resume} a=${a} act=${act} />` : null}
          <${Resolve} key=${`resolve-${a.id}`} a=${a} act=${act} />
          <${Progress} act=${act} />
          <${Extension} a=${a} act=${act} />
          ${a.paused ? null : html`<${Pause} a=${a} act=${act} />`}
          <${Transfer} a=${a} act=${act} />` : null}
      </div>` : null}
      ${mine && !open ? html`<div class="dept-side"><section class="card"><h2>${t('办理状态', 'State')}</h2>
        <p>${t(`此派单${assignmentStateName(a.state)}，无需再办理。`, `This assignment is ${assignmentStateName(a.state)}; nothing left to do.`)}</p></section></div>` : null}
    </div>
  <//>`;
}
