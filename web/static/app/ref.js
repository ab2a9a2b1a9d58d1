// Reference data, loaded once per sign-in: names for every code a person would otherwise
// read (areas, categories, departments) and the jurisdiction's GeoJSON for maps.
import { api, currentUser } from './api.js';
import { t } from './i18n.js';

let loaded = null;
const data = { categories: [], departments: [], areas: new Map(), features: null, root: null };

export function loadRef(force = false) {
  if (loaded && !force) return loaded;
  const user = currentUser();
  const root = (user?.area ?? '').split('/')[0];
  loaded = Promise.all([
    api('dispatch', '/categories'),
    api('dispatch', '/departments').catch(() => []),
    root ? api('intake', '/areas/features', { query: { root } }) : null,
  ]).then(([categories, departments, features]) => {
    data.categories = categories;
    data.departments = departments;
    data.features = features;
    data.root = root;
    data.areas = new Map();
    for (const f of features?.features ?? []) {
      data.areas.set(f.properties.path, f.properties);
      data.areas.set(f.properties.code, f.properties);
    }
    return data;
  }).catch((err) => { loaded = null; throw err; });
  return loaded;
}

export const ref = data;

export function categoryName(code) {
  const c = data.categories.find((x) => x.code === code);
  return c ? c.name : code ?? '—';
}

// "事件·市容环境 › 乱堆物料" for a 小类, its own name for a 大类.
export function categoryPath(code) {
  const c = data.categories.find((x) => x.code === code);
  if (!c) return code ?? '—';
  const parent = c.parent_code && data.categories.find((x) => x.code === c.parent_code);
  return parent ? `${parent.name} › ${c.name}` : c.name;
}

export function deptName(id) {
  return data.departments.find((d) => d.id === id)?.name ?? id ?? '—';
}

export function areaName(pathOrCode) {
  if (!pathOrCode) return '—';
  const a = data.areas.get(pathOrCode) ?? data.areas.get(pathOrCode.split('/').pop());
  return a ? a.name : pathOrCode;
}

// The place as a person says it: street › community › grid (the district left out).
export function placeName(path) {
  if (!path) return '—';
  const parts = path.split('/');
  const names = parts.slice(1).map((_, i) => areaName(parts.slice(0, i + 2).join('/')));
  return names.length ? names.join(' › ') : areaName(path);
}

export const PRIORITIES = [
  ['urgent', '紧急', 'Urgent'], ['normal', '一般', 'Normal'], ['minor', '轻微', 'Minor'],
];
export const priorityName = (p) => {
  const x = PRIORITIES.find(([k]) => k === p);
  return x ? t(x[1], x[2]) : p;
};

const CASE_STATUS = {
  reported: ['已上报', 'Reported'], whistled: ['已吹哨', 'Whistled'],
  unroutable: ['待人工派单', 'Awaiting manual dispatch'], dispatched: ['已派单', 'Dispatched'],
  signed_for: ['部门已报到', 'Signed for'], resolved: ['已办结待核查', 'Resolved, to verify'],
  rework: ['返工中', 'In rework'], closed: ['已结案', 'Closed'], reopened: ['已重新打开', 'Reopened'],
};
export const caseStatusName = (s) => (CASE_STATUS[s] ? t(...CASE_STATUS[s]) : s);

const ASSIGNMENT_STATE = {
  dispatched: ['待报到', 'To sign for'], signed_for: ['办理中', 'In hand'],
  resolved: ['已办结', 'Resolved'], rejected: ['已退单', 'Rejected'], transferred: ['已转办', 'Transferred'],
};
export const assignmentStateName = (s) => (ASSIGNMENT_STATE[s] ? t(...ASSIGNMENT_STATE[s]) : s);

const CLOCKS = {
  sign_for: ['报到时限', 'Sign-for'], on_site: ['到场时限', 'On-site'], resolve: ['办结时限', 'Resolution'],
};
export const clockName = (c) => (CLOCKS[c] ? t(...CLOCKS[c]) : c);

const LEVELS = {
  grid: ['网格', 'Grid'], community: ['社区', 'Community'], street: ['街道', 'Street'], district: ['区', 'District'],
};
export const levelName = (l) => (LEVELS[l] ? t(...LEVELS[l]) : l);

const ROLES = {
  grid_worker: ['网格员', 'Grid worker'], community: ['社区', 'Community'], street: ['街道', 'Street'],
  district: ['区指挥中心', 'District command'], department: ['职能部门', 'Department'],
  supervisor: ['督办', 'Supervisor'], admin: ['系统管理员', 'Administrator'],
};
export const roleName = (r) => (ROLES[r] ? t(...ROLES[r]) : r);
