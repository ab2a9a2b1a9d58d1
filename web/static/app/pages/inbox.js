// 待办 (a department's inbox): the department's assignments, the earliest deadline first, with
// a state filter, live while the page is open (the duty desk's notify stream), and the desk's
// unread messages to be marked read.
import { html, useEffect, useRef, useState } from '../../vendor/preact-htm.mjs';
import { api } from '../api.js';
import { fmtTime, getLang, t } from '../i18n.js';
import {
  assignmentStateName, categoryName, clockName, deptName, placeName, priorityName,
} from '../ref.js';
import { openStream } from '../sse.js';
import {
  Chip, Deadline, ErrorNote, Field, Loading, Page, Table, toast, useAsync, useNow,
} from '../ui.js';

const PAGE = 50;

export const STATES = ['dispatched', 'signed_for', 'resolved', 'rejected', 'transferred'];

// The duty desk (值班室) of a department in notify: where its messages arrive.
export const deskOf = (departmentId) => `duty-${departmentId}`;

// A message's link as a console address: notify makes it absolute (PUBLIC_BASE_URL, for
// robots, mail and SMS); inside the console the path is what we navigate to.
export function consolePath(link) {
  if (!link) return null;
  try { return new URL(link, location.origin).pathname; } catch { return null; }
}

export const messageTitle = (m) => (getLang() === 'en' ? m.title_en || m.title : m.title);

// The duty desk's live stream: calls onMessage for each new message; returns its state in
// words for a status line. Closed when the page goes away.
export function useDeskStream(departmentId, onMessage) {
  const [state, setState] = useState('connecting');
  const handler = useRef(onMessage);
  handler.current = onMessage;
  useEffect(() => {
    if (!departmentId) return undefined;
    return openStream(`/api/notify/recipients/${encodeURIComponent(deskOf(departmentId))}/stream`, {
      onState: setState,
      onEvent: (e) => { if (e.type === 'message' && e.data && typeof e.data === 'object') handler.current(e.data); },
    });
  }, [departmentId]);
  return state;
}

export function StreamState({ state }) {
  const [tone, zh, en] = {
    open: ['green', '实时更新中', 'Live'],
    connecting: ['plain', '正在连接实时消息…', 'Connecting…'],
    reconnecting: ['yellow', '重新连接中…', 'Reconnecting…'],
    error: ['yellow', '实时消息中断，重新连接中…', 'Live updates lost, reconnecting…'],
    signed_out: ['red', '已退出登录，实时消息停止', 'Signed out: live updates stopped'],
  }[state] ?? ['plain', state, state];
  return html`<span class="dept-stream" role="status" aria-live="polite">
    <${Chip} tone=${tone}><span class="dept-dot" aria-hidden="true"></span>${t(zh, en)}<//></span>`;
}

export function PausedChip({ a }) {
  if (!a.paused) return null;
  const kind = a.pause_kind === 'hang' ? t('挂账中', 'On hold (挂账)') : t('缓办中', 'Deferred (缓办)');
  return html`<${Chip} tone="blue" title=${a.paused_since ? t(`自 ${fmtTime(a.paused_since)} 起暂停计时`, `Clocks stopped since ${fmtTime(a.paused_since)}`) : null}>
    ${kind}<//>`;
}

export const roleLabel = (role) => (role === 'lead' ? t('主办', 'Lead') : role === 'co' ? t('协办', 'Co-handler') : role);

export function stateTone(state) {
  return { dispatched: 'yellow', signed_for: 'blue', resolved: 'green' }[state] ?? 'plain';
}

function DeadlineCell({ a, now }) {
  if (a.paused) return html`<span class="muted">${t('计时已暂停', 'Clock stopped')}</span>`;
  if (!a.deadline) return html`<span class="muted">—</span>`;
  return html`<div class="dept-deadline"><span class="small">${clockName(a.deadline_clock)}</span>
    <${Deadline} due=${a.deadline} overdue=${a.overdue} now=${now} /></div>`;
}

function Messages({ desk, unread }) {
  const [errors, setErrors] = useState({});
  const [busy, setBusy] = useState(null);
  const [gone, setGone] = useState(() => new Set()); // marked read here, before the reload

  const markRead = async (m) => {
    setBusy(m.id); setErrors((e) => ({ ...e, [m.id]: null }));
    try {
      await api('notify', `/recipients/${encodeURIComponent(desk)}/inbox/${m.id}/read`, { method: 'POST' });
      setGone((g) => new Set(g).add(m.id));
      return true;
    } catch (err) {
      setErrors((e) => ({ ...e, [m.id]: err }));
      return false;
    } finally { setBusy(null); }
  };
  const markOne = async (m) => { if (await markRead(m)) toast(t('已标为已读', 'Marked read')); };
  const markAll = async () => {
    let n = 0;
    for (const m of rows) n += (await markRead(m)) ? 1 : 0;
    toast(t(`已将 ${n} 条消息标为已读`, `${n} messages marked read`));
    unread.reload();
  };

  const rows = (unread.data ?? []).filter((m) => !gone.has(m.id));
  return html`<section class="card dept-messages" aria-labelledby="dept-unread-h">
    <div class="dept-section-head">
      <h2 id="dept-unread-h">${t('未读消息', 'Unread messages')}
        ${rows.length ? html` <${Chip} tone="red">${rows.length}<//>` : null}</h2>
      ${rows.length > 1 ? html`<button type="button" disabled=${busy !== null} onClick=${markAll}>
        ${t('全部标为已读', 'Mark all read')}</button>` : null}
    </div>
    ${unread.error ? html`<${ErrorNote} error=${unread.error} />` : null}
    ${unread.loading && unread.data === undefined ? html`<${Loading} />` : null}
    ${unread.data !== undefined && !rows.length ? html`<p class="muted">${t('没有未读消息', 'No unread messages')}</p>` : null}
    ${rows.length ? html`<ul class="list dept-message-list">${rows.map((m) => html`<li key=${m.id}>
      <div class="row">
        <span class="title">${messageTitle(m)}</span>
        <span class="muted small">${fmtTime(m.created_at)}</span>
      </div>
      <div class="row">
        ${consolePath(m.link) ? html`<a href=${consolePath(m.link)}>${t('查看', 'Open')}
          <span class="sr-only">${messageTitle(m)}</span></a>` : null}
        <button type="button" class="link" disabled=${busy === m.id} onClick=${() => markOne(m)}>
          ${t('标为已读', 'Mark read')}<span class="sr-only">：${messageTitle(m)}</span></button>
      </div>
      <${ErrorNote} error=${errors[m.id]} />
    </li>`)}</ul>` : null}
  </section>`;
}

export default function Inbox({ user, query }) {
  const dept = user.department_id;
  const [state, setState] = useState(STATES.includes(query?.state) ? query.state : '');
  const [limit, setLimit] = useState(PAGE);
  const now = useNow(15_000);
  const list = useAsync(() => (dept
    ? api('dispatch', `/departments/${encodeURIComponent(dept)}/assignments`,
      { query: { sort: 'deadline', state, limit } })
    : Promise.resolve([])), [dept, state, limit]);
  const [fresh, setFresh] = useState(() => new Set());
  const unread = useAsync(() => (dept
    ? api('notify', `/recipients/${encodeURIComponent(deskOf(dept))}/inbox`, { query: { unread: true, limit: 20 } })
    : Promise.resolve([])), [dept]);

  const stream = useDeskStream(dept, (m) => {
    toast(messageTitle(m));
    const path = consolePath(m.link);
    const id = path?.startsWith('/assignments/') ? path.slice('/assignments/'.length) : null;
    if (id) setFresh((s) => new Set(s).add(id));
    list.reload();
    unread.reload();
  });

  const changeState = (value) => {
    setState(value); setLimit(PAGE);
    const u = new URL(location.href);
    if (value) u.searchParams.set('state', value); else u.searchParams.delete('state');
    history.replaceState(history.state, '', u.pathname + u.search);
  };

  if (!dept) {
    return html`<${Page} title=${t('待办', 'Inbox')}>
      <p class="error" role="alert">${t('您的账号没有所属部门，请联系系统管理员。', 'Your account has no department; ask the administrator.')}</p><//>`;
  }

  const rows = list.data ?? [];
  const columns = [
    { label: t('案件编号', 'Case'), render: (a) => html`<a href=${`/assignments/${a.id}`}>${a.case_no}</a>
      ${fresh.has(a.id) ? html` <${Chip} tone="red">${t('新', 'New')}<//>` : null}
      ${a.priority === 'urgent' ? html` <${Chip} tone="red">${priorityName(a.priority)}<//>` : null}` },
    { label: t('分类', 'Category'), render: (a) => categoryName(a.category) },
    { label: t('位置', 'Place'), render: (a) => placeName(a.area_path) },
    { label: t('角色', 'Role'), render: (a) => roleLabel(a.role) },
    { label: t('状态', 'State'), render: (a) => html`<${Chip} tone=${stateTone(a.state)}>${assignmentStateName(a.state)}<//>
      ${a.paused ? html` <${PausedChip} a=${a} />` : null}` },
    { label: t('时限', 'Deadline'), render: (a) => html`<${DeadlineCell} a=${a} now=${now} />` },
    { label: t('督办', 'Urged'), render: (a) => (a.urge_count
      ? html`<${Chip} tone="red" title=${a.last_urged_at ? t(`最近一次：${fmtTime(a.last_urged_at)}`, `Last: ${fmtTime(a.last_urged_at)}`) : null}>
          ${t(`督办 ${a.urge_count} 次`, `Urged ${a.urge_count}×`)}<//>`
      : html`<span class="muted">—</span>`) },
  ];
  const overdue = rows.filter((a) => a.overdue && !a.paused).length;
  const toSign = rows.filter((a) => a.state === 'dispatched').length;

  return html`<${Page} wide title=${t(`待办 · ${deptName(dept)}`, `Inbox · ${deptName(dept)}`)}
    actions=${html`<${StreamState} state=${stream} />
      <button type="button" onClick=${() => { list.reload(); unread.reload(); }} disabled=${list.loading}>
        ${t('刷新', 'Refresh')}</button>`}>
    <div class="dept-layout">
      <section class="dept-main" aria-labelledby="dept-list-h">
        <div class="dept-toolbar">
          <h2 id="dept-list-h" class="sr-only">${t('派单列表', 'Assignments')}</h2>
          <${Field} label=${t('状态筛选', 'Filter by state')}>${(id) => html`
            <select id=${id} value=${state} onChange=${(e) => changeState(e.target.value)}>
              <option value="">${t('全部', 'All')}</option>
              ${STATES.map((s) => html`<option value=${s}>${assignmentStateName(s)}</option>`)}
            </select>`}<//>
          <p class="muted small dept-summary" aria-live="polite">
            ${list.data !== undefined ? t(`共 ${rows.length} 件，待报到 ${toSign} 件，超时 ${overdue} 件（按时限先后排列）`,
              `${rows.length} shown, ${toSign} to sign for, ${overdue} late (earliest deadline first)`) : ''}</p>
        </div>
        <${ErrorNote} error=${list.error} />
        ${list.loading && list.data === undefined ? html`<${Loading} />`
          : html`<${Table} caption=${t('本部门的派单，按时限先后排列', "The department's assignments, earliest deadline first")}
              columns=${columns} rows=${rows} rowKey=${(a) => a.id}
              empty=${state ? t(`没有“${assignmentStateName(state)}”的派单`, `No assignments ${assignmentStateName(state)}`)
                : t('暂无派单', 'No assignments yet')} />`}
        ${rows.length >= limit ? html`<p><button type="button" onClick=${() => setLimit(limit + PAGE)} disabled=${list.loading}>
          ${t('加载更多', 'Show more')}</button></p>` : null}
      </section>
      <aside class="dept-side"><${Messages} desk=${deskOf(dept)} unread=${unread} /></aside>
    </div>
  <//>`;
}
