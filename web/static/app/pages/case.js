// 案件详情: one case for everyone allowed to read it — the facts, the photos before and after,
// the departments handling it with their clocks (红灯/黄灯), the whole history with who did
// what, the exports, and the actions the caller's role may take in the case's state (the
// server still decides and its refusal is shown as it says it).
import { html, useEffect, useRef, useState } from '../../vendor/preact-htm.mjs';
import { api, download } from '../api.js';
import { fmtTime, t } from '../i18n.js';
import {
  assignmentStateName, categoryPath, clockName, deptName, placeName, priorityName,
} from '../ref.js';
import { Chip, Deadline, Empty, ErrorNote, Loading, Page, toast, useAsync, useNow } from '../ui.js';
import { CaseActions } from '../casework/actions.js';
import { Photos } from '../casework/photos.js';
import {
  actorText, describe, eventDepartments, eventLabel, eventTone, handlerRoleName, paren, pauseKindName, statusTone,
} from '../casework/words.js';
import { coordName, ExpectedResolution, sourceName, statusLabel } from '../casework/sources.js';
import { isId, Lookup } from '../casework/lookup.js';

const AREA = ['community', 'street', 'district'];
const FOLLOW_UPS = [1200, 3000, 6000, 10000, 16000]; // events reach tracking a moment later

// The facts from intake's case, or — for a department, which reads the case through its
// assignment — from tracking's timeline and the report event.
function factsOf(c, tl) {
  const reported = tl?.events.find((e) => e.type === 'case.reported');
  if (c) {
    return {
      ...c, address: c.location?.address, lat: c.location?.lat, lon: c.location?.lon,
      assigned: c.assigned_departments ?? [],
    };
  }
  if (!tl) return null;
  const p = reported?.payload ?? {};
  const closed = [...tl.events].reverse().find((e) => e.type === 'case.closed' || e.type === 'case.merged');
  return {
    id: tl.case.case_id, case_no: tl.case.case_no, category: tl.case.category, priority: tl.case.priority,
    status: tl.case.status, area_path: tl.case.area_path, description: p.description, address: p.location?.address,
    lat: p.location?.lat, lon: p.location?.lon, reporter: p.reporter, reported_at: p.reported_at ?? reported?.occurred_at,
    updated_at: tl.case.updated_at, closed_at: tl.case.status === 'closed' ? closed?.occurred_at : null,
    expected_resolution_at: tl.case.expected_resolution_at, expected_earliest: tl.case.expected_earliest,
    expected_latest: tl.case.expected_latest, expected_basis: tl.case.expected_basis,
    departments: [], assigned: tl.assignments.filter((a) => ['dispatched', 'signed_for', 'resolved'].includes(a.state)).map((a) => a.department_id),
  };
}

function Facts({ f, tl, reporters, now, user }) {
  // the light of the nearest deadline follows its clock's own warning instant
  const clock = tl?.clocks.find((c) => c.state === 'running' && f.deadline_at
    && new Date(c.due_at).getTime() === new Date(f.deadline_at).getTime());
  const warn = clock?.warn_at ? (new Date(clock.due_at) - new Date(clock.warn_at)) / 1000 : 3600;
  // one line per department: its latest assignment (a rework is a new one at the same place)
  const latest = new Map();
  for (const a of tl?.assignments ?? []) {
    if (['dispatched', 'signed_for', 'resolved'].includes(a.state)) latest.set(a.department_id, a);
  }
  const handling = [...latest.values()];
  const credited = (reporters ?? []).filter((r) => r.reporter !== f.reporter);
  return html`<section class="card cw-facts" aria-labelledby="cw-facts-h">
    <h2 id="cw-facts-h">${t('基本信息', 'Facts')}</h2>
    <p class="cw-desc">${f.description ?? '—'}</p>
    <dl class="facts">
      <dt>${t('案件编号', 'Case number')}</dt><dd><strong>${f.case_no}</strong></dd>
      <dt>${t('状态', 'Status')}</dt><dd><${Chip} tone=${f.status === 'to_verify' ? 'yellow' : statusTone(f.status)}>${statusLabel(f.status)}<//>
        ${f.status === 'to_verify' && user.role !== 'department' ? html`<span class="cw-block small"><a href="/verify">${t('到“群众上报待核实”核实', 'Verify it under Residents’ reports')}</a></span>` : null}</dd>
      ${f.source ? html`<dt>${t('案件来源', 'Source')}</dt><dd class="cw-source">${sourceName(f.source)}</dd>` : null}
      <dt>${t('分类', 'Category')}</dt><dd>${categoryPath(f.category)}</dd>
      <dt>${t('优先级', 'Priority')}</dt><dd>${f.priority === 'urgent'
        ? html`<${Chip} tone="red">${priorityName(f.priority)}<//>` : priorityName(f.priority)}</dd>
      <dt>${t('位置', 'Place')}</dt><dd>${placeName(f.area_path)}
        ${f.address ? html`<span class="cw-block">${f.address}</span>` : null}
        ${f.lat != null && f.lon != null ? html`<span class="cw-block muted small">${t('坐标', 'Position')} ${Number(f.lat).toFixed(5)}, ${Number(f.lon).toFixed(5)}</span>` : null}
        ${f.position_sent ? html`<span class="cw-block muted small">${t(`上报时为${coordName(f.position_sent.coord_system)}坐标 ${f.position_sent.lat}, ${f.position_sent.lon}，已换算为 WGS-84`,
          `sent as ${coordName(f.position_sent.coord_system)} ${f.position_sent.lat}, ${f.position_sent.lon}; converted to WGS-84`)}</span>` : null}</dd>
      <dt>${t('上报人', 'Reported by')}</dt><dd>${f.reporter ?? '—'}
        ${credited.length ? html`<span class="cw-block muted small">${t('合并的重复上报：', 'Merged reports: ')}${credited.map((r) => `${r.reporter}${paren(fmtTime(r.reported_at))}`).join(t('、', ', '))}</span>` : null}</dd>
      <dt>${t('上报时间', 'Reported')}</dt><dd>${fmtTime(f.reported_at)}</dd>
      <dt>${t('最近更新', 'Updated')}</dt><dd>${fmtTime(f.updated_at)}</dd>
      ${f.closed_at ? html`<dt>${t('结案时间', 'Closed')}</dt><dd>${fmtTime(f.closed_at)}</dd>` : null}
      ${f.status !== 'closed' && f.deadline_at ? html`<dt>${t('最近时限', 'Next deadline')}</dt>
        <dd><${Deadline} due=${f.deadline_at} overdue=${f.overdue} warnSeconds=${warn} now=${now} />
          ${clock ? html`<span class="cw-block muted small">${clockName(clock.clock)}</span>` : null}</dd>` : null}
      ${f.status !== 'to_verify' ? html`<dt>${t('预计办结时间', 'Expected resolution')}</dt>
        <dd class="cw-expected"><${ExpectedResolution} c=${f} now=${now}
          breach=${tl?.case?.breach_likely ? (t(tl.case.breach_reason, tl.case.breach_reason_en) ?? '') : null} /></dd>` : null}
      <dt>${t('承办部门', 'Handled by')}</dt><dd>${handling.length
        ? handling.map((a) => `${a.department_name ?? deptName(a.department_id)}${paren(handlerRoleName(a.role))}`).join(t('、', ', '))
        : f.assigned?.length ? f.assigned.map(deptName).join(t('、', ', ')) : html`<span class="muted">${t('尚未派单', 'Not dispatched yet')}</span>`}</dd>
      ${f.departments?.length ? html`<dt>${t('吹哨点名', 'Named in whistle')}</dt><dd>${f.departments.map(deptName).join(t('、', ', '))}</dd>` : null}
    </dl>
  </section>`;
}

function ClockLine({ c, now }) {
  const due = new Date(c.due_at).getTime();
  let state;
  if (c.state === 'running') {
    const warn = c.warn_at ? (due - new Date(c.warn_at).getTime()) / 1000 : 3600;
    state = html`<${Chip} tone="blue">${t('计时中', 'Running')}<//>
      <${Deadline} due=${c.due_at} overdue=${now > due} warnSeconds=${warn} now=${now} />`;
  } else if (c.state === 'paused') {
    state = html`<${Chip} tone="yellow">${t('暂停计时', 'Standing still')}<//>
      <span class="small">${t(`自 ${fmtTime(c.paused_since)} 起；原时限 ${fmtTime(c.due_at)}`, `since ${fmtTime(c.paused_since)}; deadline was ${fmtTime(c.due_at)}`)}</span>`;
  } else {
    const late = c.stopped_at && new Date(c.stopped_at).getTime() > due;
    state = html`<${Chip}>${t('已停止', 'Stopped')}<//>
      ${late ? html`<${Chip} tone="red">${t('超时完成', 'Done late')}<//>` : html`<${Chip} tone="green">${t('按时', 'On time')}<//>`}
      <span class="small muted">${fmtTime(c.stopped_at)}${t('，时限 ', '; deadline ')}${fmtTime(c.due_at)}</span>`;
  }
  return html`<li class="cw-clock"><span class="cw-clock-name">${clockName(c.clock)}</span> ${state}
    ${c.extension_days ? html`<span class="small muted"> · ${t(`已延期 ${c.extension_days} 个工作日`, `extended by ${c.extension_days} working days`)}</span>` : null}
    ${c.paused_seconds && c.state !== 'paused' ? html`<span class="small muted"> · ${t('曾暂停计时', 'stood still for a while')}</span>` : null}</li>`;
}

function Handling({ tl, user, now }) {
  if (!tl) return null;
  const reworks = new Set(tl.events.filter((e) => e.type === 'case.dispatched' && e.payload?.rework)
    .map((e) => e.payload.assignment_id));
  const canOpen = (a) => (user.role === 'department' ? a.department_id === user.department_id : [...AREA, 'supervisor'].includes(user.role));
  return html`<section class="card" aria-labelledby="cw-handling-h">
    <h2 id="cw-handling-h">${t('承办部门与时限', 'Departments and deadlines')}</h2>
    ${tl.assignments.length ? html`<ul class="cw-assignments">${tl.assignments.map((a) => {
      const clocks = tl.clocks.filter((c) => c.assignment_id === a.assignment_id);
      const pauses = tl.pauses.filter((p) => p.assignment_id === a.assignment_id);
      const mine = user.role === 'department' && a.department_id === user.department_id;
      return html`<li key=${a.assignment_id} class=${`cw-assignment${mine ? ' mine' : ''}`}>
        <div class="row"><strong>${a.department_name ?? deptName(a.department_id)}</strong>
          <${Chip}>${handlerRoleName(a.role)}<//>
          ${reworks.has(a.assignment_id) ? html`<${Chip} tone="red">${t('返工', 'Rework')}<//>` : null}
          <${Chip} tone=${a.state === 'resolved' ? 'green' : a.state === 'rejected' || a.state === 'transferred' ? 'yellow' : 'blue'}>${assignmentStateName(a.state)}<//>
          ${mine ? html`<${Chip} tone="blue">${t('本部门', 'Yours')}<//>` : null}</div>
        <p class="small muted">${t('派单', 'Dispatched')} ${fmtTime(a.dispatched_at)}
          ${a.signed_for_at ? html` · ${t('报到', 'Signed for')} ${fmtTime(a.signed_for_at)}` : null}
          ${a.resolved_at ? html` · ${t('办结', 'Resolved')} ${fmtTime(a.resolved_at)}` : null}</p>
        ${clocks.length ? html`<ul class="cw-clocks" aria-label=${t(`${a.department_name ?? deptName(a.department_id)}的时限`, `${a.department_name ?? deptName(a.department_id)}: deadlines`)}>
          ${clocks.map((c) => html`<${ClockLine} key=${c.clock} c=${c} now=${now} />`)}</ul>` : null}
        ${pauses.map((p) => html`<p class="small cw-pause"><${Chip} tone="yellow">${pauseKindName(p.kind)}<//>
          ${p.reason} · ${fmtTime(p.start)} – ${p.end ? fmtTime(p.end) : t('至今', 'now')}</p>`)}
        ${canOpen(a) ? html`<p><a href=${`/assignments/${a.assignment_id}`}>${mine
          ? t('办理本部门的派单', 'Work on your assignment') : t('查看派单详情', 'Assignment details')}</a></p>` : null}
      </li>`;
    })}</ul>` : html`<${Empty}>${t('尚未派给任何部门', 'Not dispatched to any department yet')}<//>`}
  </section>`;
}

// The record of the whole handling, and its export (at its end: on a phone the case itself
// comes first, not two download buttons).
function History({ tl, onExport }) {
  const [newest, setNewest] = useState(false);
  if (!tl) return null;
  const events = newest ? [...tl.events].reverse() : tl.events;
  return html`<section class="card" aria-labelledby="cw-history-h">
    <div class="cw-section-head"><h2 id="cw-history-h">${t('办理全过程', 'History')}</h2>
      <button type="button" class="link" onClick=${() => setNewest(!newest)}>
        ${newest ? t('按时间正序', 'Oldest first') : t('最新在前', 'Newest first')}</button></div>
    ${events.length ? html`<ol class="timeline cw-timeline">${events.map((e) => {
      const depts = eventDepartments(e);
      return html`<li key=${e.event_id} class=${`cw-ev ${eventTone(e)}`}>
        <div class="cw-ev-head"><strong>${eventLabel(e)}</strong>
          <time datetime=${e.occurred_at}>${fmtTime(e.occurred_at, { seconds: true })}</time></div>
        <p class="cw-ev-text">${describe(e)}</p>
        ${e.type === 'case.merged' && e.payload.primary_case_id ? html`<p class="small">
          <a href=${`/cases/${e.payload.primary_case_id}`}>${t(`打开主案件 ${e.payload.primary_case_no}`, `Open the primary case ${e.payload.primary_case_no}`)}</a></p>` : null}
        <p class="small muted">${t('操作人：', 'By: ')}${actorText(e.actor)}
          ${depts.length ? html` · ${t('部门：', 'Department: ')}${depts.map(deptName).join(t('、', ', '))}` : null}</p>
      </li>`;
    })}</ol>` : html`<${Empty} />`}
    <div class="cw-export">
      <span class="muted small">${t('导出办理全过程：', 'Export the history: ')}</span>
      <button type="button" onClick=${() => onExport('csv')}>${t('导出 CSV', 'Export CSV')}</button>
      <button type="button" onClick=${() => onExport('json')}>${t('导出 JSON', 'Export JSON')}</button>
    </div>
  </section>`;
}

// /cases/<id>, or /cases/<case number> looked up first
export default function CasePage({ params, user }) {
  return isId(params.id) ? html`<${CaseView} params=${params} user=${user} />`
    : html`<${Lookup} no=${params.id} user=${user} />`;
}

function CaseView({ params, user }) {
  const id = params.id;
  const isDept = user.role === 'department';
  const now = useNow(15_000);
  const caseQ = useAsync(() => (isDept ? Promise.resolve(null) : api('intake', `/cases/${id}`)), [id]);
  const tlQ = useAsync(() => api('tracking', `/cases/${id}/timeline`), [id]);
  const photosQ = useAsync(() => api('intake', `/cases/${id}/photos`), [id]);
  const reportersQ = useAsync(() => (isDept ? Promise.resolve([]) : api('intake', `/cases/${id}/reporters`).catch(() => [])), [id]);
  const [ratingLink, setRatingLink] = useState(null);
  const timers = useRef([]);
  const refresh = () => { caseQ.reload(); tlQ.reload(); photosQ.reload(); };
  const refreshRef = useRef(refresh);
  refreshRef.current = refresh;

  // Quietly current: every 20 s while the tab is shown, and a few times after an action
  // while its events travel to tracking.
  useEffect(() => {
    const every = setInterval(() => { if (document.visibilityState === 'visible') refreshRef.current(); }, 20_000);
    return () => { clearInterval(every); timers.current.forEach(clearTimeout); };
  }, [id]);
  const done = (message, tone = 'ok') => {
    toast(message, tone);
    refresh();
    timers.current.forEach(clearTimeout);
    timers.current = FOLLOW_UPS.map((ms) => setTimeout(() => refreshRef.current(), ms));
  };

  const c = caseQ.data;
  const tl = tlQ.data;
  const f = factsOf(c, tl);
  const first = (isDept ? tlQ : caseQ);
  const exportAs = async (format) => {
    try {
      await download('tracking', `/cases/${id}/history`, { format });
    } catch (err) {
      toast(err.message, 'error');
    }
  };

  if (!f) {
    return html`<${Page} title=${t('案件详情', 'Case')}>
      ${first.error ? html`<${ErrorNote} error=${first.error} />
        <p><a href=${isDept ? '/inbox' : '/cases'}>${isDept ? t('返回待办', 'Back to inbox') : t('返回案件列表', 'Back to cases')}</a></p>` : html`<${Loading} />`}
    <//>`;
  }

  return html`<${Page} wide title=${t(`案件 ${f.case_no}`, `Case ${f.case_no}`)} actions=${html`
      <button type="button" onClick=${refresh}>${t('刷新', 'Refresh')}</button>`}>
    <p class="cw-back"><a href=${isDept ? '/inbox' : '/cases'}>${isDept ? t('← 返回待办', '← Inbox') : t('← 案件列表', '← All cases')}</a></p>
    ${caseQ.error && c ? html`<${ErrorNote} error=${caseQ.error} />` : null}
    <div class="cw-case">
      <div class="cw-col">
        <${Facts} f=${f} tl=${tl} reporters=${reportersQ.data} now=${now} user=${user} />
        <${Photos} photos=${photosQ.data} error=${photosQ.error} />
        <${CaseActions} f=${f} tl=${tl} user=${user} onDone=${done}
          ratingLink=${ratingLink} setRatingLink=${setRatingLink} />
      </div>
      <div class="cw-col">
        ${tlQ.error ? html`<section class="card"><h2>${t('办理全过程', 'History')}</h2>
          <${ErrorNote} error=${tlQ.error} />
          <p class="muted small">${t('刚上报的案件要过片刻才有时间线。', 'A case just reported gets its timeline a moment later.')}</p></section>` : null}
        <${Handling} tl=${tl} user=${user} now=${now} />
        <${History} tl=${tl} onExport=${exportAs} />
        ${!tl && !tlQ.error ? html`<${Loading} />` : null}
      </div>
    </div>
  <//>`;
}
