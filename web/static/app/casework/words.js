// What happened to a case, in words a community worker reads: one sentence per timeline
// event, who did it, and which departments it concerns (by name, never by id).
import { fmtTime, t } from '../i18n.js';
import { clockName, deptName, levelName, priorityName, roleName } from '../ref.js';

const LABELS = {
  'case.reported': ['网格上报', 'Reported'],
  'case.whistled': ['吹哨', 'Whistle blown'],
  'case.unroutable': ['待人工派单', 'Awaiting manual dispatch'],
  'case.dispatched': ['派单', 'Dispatched'],
  'case.signed_for': ['部门报到', 'Signed for'],
  'case.resolved': ['部门办结', 'Resolved by department'],
  'case.closed': ['核查结案', 'Closed'],
  'case.rework_requested': ['返工', 'Sent back for rework'],
  'case.rated': ['群众评价', 'Rated'],
  'case.reopened': ['重新打开', 'Reopened'],
  'case.merged': ['合并重复案件', 'Merged as duplicate'],
  'case.photo_added': ['上传照片', 'Photo added'],
  'case.rejected': ['部门退单', 'Rejected by department'],
  'case.transferred': ['部门转办', 'Transferred'],
  'case.progressed': ['办理进展', 'Progress'],
  'case.extension_requested': ['申请延期', 'Extension asked'],
  'case.extension_decided': ['延期审批', 'Extension decided'],
  'case.pause_requested': ['申请挂账/缓办', 'Pause asked'],
  'case.pause_decided': ['挂账/缓办审批', 'Pause decided'],
  'case.resumed': ['恢复办理', 'Resumed'],
  'case.deadline_warning': ['时限预警', 'Deadline warning'],
  'case.overdue': ['超时', 'Overdue'],
  'case.escalated': ['逐级上报', 'Escalated'],
  'case.urged': ['督办', 'Urged'],
  'case.clock_started': ['时限开始', 'Clock started'],
  'case.clock_stopped': ['时限停止', 'Clock stopped'],
};

// The case's status as a chip colour (the text always says it too).
export const statusTone = (s) => ({
  unroutable: 'yellow', rework: 'red', resolved: 'blue', closed: 'green', reopened: 'yellow',
}[s] ?? 'plain');

export const eventLabel = (e) => (LABELS[e.type] ? t(...LABELS[e.type]) : e.label ?? e.type);

// red: late; yellow: warning; green: done well; blue: the community's own steps
const TONES = {
  'case.overdue': 'red', 'case.escalated': 'red', 'case.rework_requested': 'red',
  'case.rejected': 'yellow', 'case.deadline_warning': 'yellow', 'case.urged': 'yellow',
  'case.unroutable': 'yellow', 'case.closed': 'green', 'case.resolved': 'green', 'case.rated': 'green',
  'case.whistled': 'blue', 'case.dispatched': 'blue', 'case.signed_for': 'blue',
};
export const eventTone = (e) => TONES[e.type] ?? 'plain';

const BASIS = {
  named: ['吹哨点名', 'named in the whistle'], rule: ['派单规则', 'routing rule'],
  area_default: ['分类默认责任主体', 'default responsible unit'], liaison: ['包联单位兜底', 'liaison unit'],
  manual: ['人工派单', 'manual dispatch'], transfer: ['转办', 'transfer'], rework: ['返工', 'rework'],
};
export const basisName = (b) => (BASIS[b] ? t(...BASIS[b]) : b);

const ROLE = { lead: ['主办', 'lead'], co: ['协办', 'co-handler'] };
export const handlerRoleName = (r) => (ROLE[r] ? t(...ROLE[r]) : r ?? '');

const PAUSE = { hang: ['挂账', 'on hold'], defer: ['缓办', 'deferred'] };
export const pauseKindName = (k) => (PAUSE[k] ? t(...PAUSE[k]) : k ?? '');

const KINDS = {
  functional: ['职能部门', 'Government departments'], street_office: ['街道办事处', 'Street offices'],
  co_building: ['驻区单位', 'Resident units'], property: ['物业企业', 'Property companies'],
  volunteer: ['志愿服务队', 'Volunteer teams'],
};
export const deptKindName = (k, zh) => (KINDS[k] ? t(...KINDS[k]) : zh ?? k);

// "（x）" in Chinese, " (x)" in English.
export const paren = (x) => t(`（${x}）`, ` (${x})`);

// Who did it: "桃园社区书记（社区）"; the resident and the system's own clocks by what they are.
export function actorText(actor) {
  if (!actor) return t('系统（时限监控）', 'System (deadline clocks)');
  if (actor.role === 'resident') return t('群众（评价链接）', 'Resident (rating link)');
  if (actor.role === 'system') return t('系统', 'System');
  const who = actor.name ?? actor.subject;
  return `${who}${paren(roleName(actor.role))}`;
}

const dept = (p) => p.department_name ?? deptName(p.department_id);
const names = (ids) => (ids ?? []).map(deptName).join(t('、', ', '));
const withNote = (text, note, zh = '说明', en = 'note') =>
  (note ? `${text}${t(`；${zh}：`, `; ${en}: `)}${note}` : text);

// The sentence for one event (payload fields as in shared/events.py).
export function describe(e) {
  const p = e.payload ?? {};
  switch (e.type) {
    case 'case.reported':
      return t(`${p.reporter ?? ''}上报：${p.description ?? ''}`, `${p.reporter ?? ''} reported: ${p.description ?? ''}`)
        + (p.location?.address ? t(`（${p.location.address}）`, ` (${p.location.address})`) : '');
    case 'case.whistled': {
      let s = t(`${levelName(p.level ?? 'community')}吹哨`, `${levelName(p.level ?? 'community')}-level whistle`);
      if (p.departments?.length) s += t(`，点名召集：${names(p.departments)}`, `, convening ${names(p.departments)}`);
      else s += t('，按派单规则派单', ', routed by the rules');
      if (p.priority === 'urgent') s += t(`，${priorityName(p.priority)}`, `, ${priorityName(p.priority)}`);
      return withNote(s, p.note);
    }
    case 'case.unroutable':
      return t(`没有可派的部门，等待人工派单：${p.reason ?? ''}`, `No department to route to; waiting for manual dispatch: ${p.reason ?? ''}`);
    case 'case.dispatched':
      return t(`派给${dept(p)}${handlerRoleName(p.role)}${p.rework ? '（返工）' : ''}，依据：${basisName(p.basis)}`,
        `Dispatched to ${dept(p)} as ${handlerRoleName(p.role)}${p.rework ? ' (rework)' : ''}, by ${basisName(p.basis)}`)
        + (p.reason ? t(`（${p.reason}）`, ` (${p.reason})`) : '');
    case 'case.signed_for':
      return t(`${dept(p)}报到（签收）`, `${dept(p)} signed for it`);
    case 'case.resolved':
      return t(`${dept(p)}办结：${p.result ?? ''}`, `${dept(p)} resolved it: ${p.result ?? ''}`)
        + (p.case_resolved === false ? t('（协办已反馈，等待其他部门）', ' (co-handler reported; waiting for the others)') : '');
    case 'case.closed':
      if (p.resolution === 'on_spot') return withNote(t('网格员随手做，现场解决并结案', 'Fixed on the spot by the grid worker and closed'), p.note);
      if (p.resolution === 'merged') return t('作为重复案件合并后结案', 'Closed as a merged duplicate');
      return withNote(t('现场核查通过，结案', 'Verified on site and closed'), p.note, '核查意见', 'check');
    case 'case.rework_requested':
      return t(`核查未通过，退回${names(p.departments) || '部门'}返工：${p.reason ?? ''}`,
        `Failed the on-site check; back to ${names(p.departments) || 'the department'} for rework: ${p.reason ?? ''}`);
    case 'case.rated':
      return t(`评价 ${p.score}/5 分（${p.channel === 'link' ? '群众通过评价链接' : '网格员代录'}）`,
        `Rated ${p.score}/5 (${p.channel === 'link' ? 'by the resident through the link' : 'recorded by staff'})`)
        + (p.comment ? t(`：${p.comment}`, `: ${p.comment}`) : '');
    case 'case.reopened':
      return t(`重新打开：${p.reason ?? ''}`, `Reopened: ${p.reason ?? ''}`);
    case 'case.merged':
      return t(`作为重复案件并入主案件 ${p.primary_case_no ?? ''}`, `Merged into the primary case ${p.primary_case_no ?? ''}`);
    case 'case.photo_added':
      return (p.kind === 'after' ? t('上传整改后照片', 'After-photo added') : t('上传整改前照片', 'Before-photo added'))
        + (p.department_id ? t(`（${deptName(p.department_id)}）`, ` (${deptName(p.department_id)})`) : '');
    case 'case.rejected':
      return t(`${dept(p)}退单：${p.reason ?? ''}`, `${dept(p)} rejected it: ${p.reason ?? ''}`);
    case 'case.transferred':
      return t(`${dept(p)}转办给${deptName(p.to_department_id)}：${p.reason ?? ''}`,
        `${dept(p)} transferred it to ${deptName(p.to_department_id)}: ${p.reason ?? ''}`);
    case 'case.progressed':
      return t(`${dept(p)}办理进展：${p.note ?? ''}`, `${dept(p)} progress: ${p.note ?? ''}`);
    case 'case.extension_requested':
      return t(`${dept(p)}申请延期 ${p.days} 个工作日：${p.reason ?? ''}`, `${dept(p)} asked for ${p.days} more working days: ${p.reason ?? ''}`);
    case 'case.extension_decided':
      return withNote(p.approved
        ? t(`批准${dept(p)}延期 ${p.days} 个工作日`, `${dept(p)} granted ${p.days} more working days`)
        : t(`不批准${dept(p)}的延期申请`, `${dept(p)}'s extension refused`), p.comment, '意见', 'comment');
    case 'case.pause_requested':
      return t(`${dept(p)}申请${pauseKindName(p.kind)}：${p.reason ?? ''}`, `${dept(p)} asked to put it ${pauseKindName(p.kind)}: ${p.reason ?? ''}`);
    case 'case.pause_decided':
      return withNote(p.approved
        ? t(`批准${dept(p)}${pauseKindName(p.kind)}，时限暂停计时`, `${dept(p)} may put it ${pauseKindName(p.kind)}; clocks stand still`)
        : t(`不批准${dept(p)}${pauseKindName(p.kind)}`, `${dept(p)}'s pause refused`), p.comment, '意见', 'comment');
    case 'case.resumed':
      return withNote(t(`${dept(p)}恢复办理，时限继续计时`, `${dept(p)} resumed; clocks run again`), p.note);
    case 'case.deadline_warning':
      return t(`${dept(p)}的${clockName(p.clock)}即将到期（${fmtTime(p.due_at)}）`,
        `${dept(p)}'s ${clockName(p.clock)} deadline is near (${fmtTime(p.due_at)})`);
    case 'case.overdue':
      return t(`${dept(p)}的${clockName(p.clock)}已超时（时限 ${fmtTime(p.due_at)}）`,
        `${dept(p)} missed the ${clockName(p.clock)} deadline (${fmtTime(p.due_at)})`);
    case 'case.escalated':
      return t(`${dept(p)}的${clockName(p.clock)}超时，逐级上报至${levelName(p.level)}${p.repeat ? `（第 ${p.repeat + 1} 次）` : ''}`,
        `${dept(p)} missed the ${clockName(p.clock)} deadline; escalated to the ${levelName(p.level)} level${p.repeat ? ` (time ${p.repeat + 1})` : ''}`);
    case 'case.urged':
      return t(`督办${dept(p)}（第 ${p.count} 次）：${p.note ?? ''}`, `${dept(p)} urged (time ${p.count}): ${p.note ?? ''}`);
    case 'case.clock_started':
      return t(`${dept(p)}的${clockName(p.clock)}开始计时，时限 ${fmtTime(p.due_at)}`,
        `${dept(p)}'s ${clockName(p.clock)} clock runs until ${fmtTime(p.due_at)}`);
    case 'case.clock_stopped':
      return t(`${dept(p)}的${clockName(p.clock)}停止计时`, `${dept(p)}'s ${clockName(p.clock)} clock stopped`);
    default:
      return e.label ?? e.type;
  }
}

// The departments an event concerns (ids), for the "部门" column of the timeline.
export function eventDepartments(e) {
  const p = e.payload ?? {};
  const ids = [];
  if (p.department_id) ids.push(p.department_id);
  if (p.to_department_id) ids.push(p.to_department_id);
  if (e.type !== 'case.dispatched') for (const d of p.departments ?? []) if (!ids.includes(d)) ids.push(d);
  return ids;
}

// A random key for Idempotency-Key (crypto.randomUUID needs a secure context; an intranet
// address over plain http is not one).
export function newKey() {
  if (globalThis.crypto?.randomUUID) {
    try { return crypto.randomUUID(); } catch { /* not a secure context */ }
  }
  const b = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}
