// 案件 / 我的案件: the cases the caller may read (intake GET /cases), newest first, filtered by
// status, place (community or grid by name, inside the caller's part of the tree), 大类,
// overdue and a text (case number, description, address). The filters live in the address,
// so a reload or a shared link shows the same list.
import { html, useEffect, useRef, useState } from '../../vendor/preact-htm.mjs';
import { api } from '../api.js';
import { fmtTime, t } from '../i18n.js';
import {
  areaName, caseStatusName, categoryName, categoryPath, deptName, placeName, priorityName, ref,
} from '../ref.js';
import { Chip, Deadline, ErrorNote, Field, Loading, Page, Table, useNow } from '../ui.js';
import { statusTone } from '../casework/words.js';

const PAGE = 50;
const STATUSES = ['reported', 'whistled', 'unroutable', 'dispatched', 'signed_for', 'resolved', 'rework', 'closed', 'reopened'];
const FILTERS = ['q', 'status', 'community', 'grid', 'category', 'overdue'];

const under = (path, root) => path === root || path.startsWith(`${root}/`);
const byPath = (a, b) => a.path.localeCompare(b.path, 'en', { numeric: true });

// The places the caller can narrow to: communities/streets above, grids below.
function placeChoices(user) {
  const areas = (ref.features?.features ?? []).map((f) => f.properties);
  if (user.role === 'grid_worker') {
    const grids = (user.grids ?? []).map((g) => areas.find((a) => a.path === g || a.code === g) ?? { path: g, code: g, name: g, level: 'grid' });
    return { upper: [], grids: grids.sort(byPath) };
  }
  const root = user.area ?? '';
  const mine = areas.filter((a) => root && under(a.path, root) && a.path !== root);
  return {
    upper: mine.filter((a) => a.level === 'street' || a.level === 'community').sort(byPath),
    grids: mine.filter((a) => a.level === 'grid').sort(byPath),
  };
}

// The place below the caller's own area (a community reads "桃园社区第3网格", the district
// "迎泽街道 › 桃园社区 › 桃园社区第3网格"); the full path is its title.
function placeBelow(path, user) {
  const root = user.area ?? '';
  if (!root || !under(path, root) || path === root) return placeName(path);
  const parts = path.split('/');
  const depth = root.split('/').length;
  return parts.slice(depth).map((_, i) => areaName(parts.slice(0, depth + i + 1).join('/'))).join(' › ');
}

function readFilters(query) {
  const f = {};
  for (const k of FILTERS) if (query?.[k]) f[k] = query[k];
  return f;
}

function writeFilters(f) {
  const u = new URLSearchParams();
  for (const k of FILTERS) if (f[k]) u.set(k, f[k]);
  const search = u.toString();
  history.replaceState(history.state, '', location.pathname + (search ? `?${search}` : ''));
}

function Filters({ filters, onChange, places, onReset }) {
  const [text, setText] = useState(filters.q ?? '');
  const set = (k, v) => onChange({ ...filters, [k]: v || undefined, ...(k === 'community' ? { grid: undefined } : {}) });
  const grids = filters.community ? places.grids.filter((g) => under(g.path, filters.community)) : places.grids;
  const classes = ref.categories.filter((c) => !c.parent_code);
  const indent = (a) => (a.level === 'community' && places.upper.some((u) => u.level === 'street') ? '\u3000' : '');
  return html`<form class="cw-filters card" role="search" aria-label=${t('筛选案件', 'Filter cases')}
    onSubmit=${(e) => { e.preventDefault(); set('q', text.trim()); }}>
    <div class="cw-filter-search">
      <${Field} label=${t('搜索', 'Search')}>${(id) => html`
        <input id=${id} type="search" value=${text} maxlength="100" onInput=${(e) => setText(e.target.value)}
          placeholder=${t('案件编号、描述或地址', 'Case number, description or address')} />`}<//>
      <button type="submit">${t('搜索', 'Search')}</button>
    </div>
    <div class="cw-filter-row">
      <${Field} label=${t('状态', 'Status')}>${(id) => html`
        <select id=${id} value=${filters.status ?? ''} onChange=${(e) => set('status', e.target.value)}>
          <option value="">${t('全部状态', 'Any status')}</option>
          ${STATUSES.map((s) => html`<option value=${s}>${caseStatusName(s)}</option>`)}
        </select>`}<//>
      ${places.upper.length ? html`<${Field} label=${t('街道/社区', 'Street / community')}>${(id) => html`
        <select id=${id} value=${filters.community ?? ''} onChange=${(e) => set('community', e.target.value)}>
          <option value="">${t('全部', 'All')}</option>
          ${places.upper.map((a) => html`<option value=${a.path}>${indent(a)}${a.name}</option>`)}
        </select>`}<//>` : null}
      ${grids.length > 1 || places.upper.length ? html`<${Field} label=${t('网格', 'Grid')}>${(id) => html`
        <select id=${id} value=${filters.grid ?? ''} onChange=${(e) => set('grid', e.target.value)}>
          <option value="">${t('全部网格', 'All grids')}</option>
          ${grids.map((a) => html`<option value=${a.path}>${a.name}</option>`)}
        </select>`}<//>` : null}
      <${Field} label=${t('大类', 'Category group')}>${(id) => html`
        <select id=${id} value=${filters.category ?? ''} onChange=${(e) => set('category', e.target.value)}>
          <option value="">${t('全部分类', 'All categories')}</option>
          ${classes.map((c) => html`<option value=${c.code}>${c.name}</option>`)}
        </select>`}<//>
      <label class="cw-check"><input type="checkbox" checked=${filters.overdue === '1'}
        onChange=${(e) => set('overdue', e.target.checked ? '1' : '')} /> ${t('只看超时', 'Overdue only')}</label>
    </div>
    ${Object.keys(filters).length ? html`<p><button type="button" class="link"
      onClick=${() => { setText(''); onReset(); }}>${t('清除筛选', 'Clear filters')}</button></p>` : null}
  </form>`;
}

function apiQuery(filters, offset) {
  return {
    q: filters.q, status: filters.status, category: filters.category,
    area: filters.grid || filters.community,
    overdue: filters.overdue === '1' ? 'true' : undefined,
    limit: PAGE, offset,
  };
}

export default function Cases({ query, user }) {
  const [filters, setFilters] = useState(() => readFilters(query));
  const [state, setState] = useState({ rows: null, error: null, loading: true, more: false });
  const seq = useRef(0);
  const now = useNow(30_000);
  const places = placeChoices(user);

  const load = async (append = false) => {
    const mine = ++seq.current;
    const offset = append ? state.rows?.length ?? 0 : 0;
    setState((s) => ({ ...s, loading: true, error: null }));
    try {
      const got = await api('intake', '/cases', { query: apiQuery(filters, offset) });
      if (mine !== seq.current) return;
      // a case reported meanwhile shifts the pages: keep each case once
      const merge = (old) => [...old, ...got.filter((c) => !old.some((o) => o.id === c.id))];
      setState((s) => ({ rows: append ? merge(s.rows ?? []) : got, error: null, loading: false, more: got.length === PAGE }));
    } catch (error) {
      if (mine === seq.current) setState((s) => ({ ...s, error, loading: false }));
    }
  };
  useEffect(() => { writeFilters(filters); load(false); }, [JSON.stringify(filters)]);

  const columns = [
    { label: t('案件编号', 'Case'), render: (c) => html`<div><a class="cw-case-link" href=${`/cases/${c.id}`}>${c.case_no}</a>
      <span class="cw-desc-short">${c.description}</span></div>` },
    { label: t('分类', 'Category'), render: (c) => html`<div><span title=${categoryPath(c.category)}>${categoryName(c.category)}</span>
      ${c.priority === 'urgent' ? html` <${Chip} tone="red">${priorityName(c.priority)}<//>` : null}</div>` },
    { label: t('位置', 'Place'), render: (c) => html`<div title=${placeName(c.area_path)}>${placeBelow(c.area_path, user)}
      ${c.location?.address ? html`<span class="muted small cw-block">${c.location.address}</span>` : null}</div>` },
    { label: t('状态', 'Status'), render: (c) => html`<${Chip} tone=${statusTone(c.status)}>${caseStatusName(c.status)}<//>` },
    { label: t('承办部门', 'Departments'), render: (c) => {
      const ids = c.assigned_departments?.length ? c.assigned_departments : c.departments ?? [];
      return ids.length ? ids.map(deptName).join(t('、', ', ')) : html`<span class="muted">—</span>`;
    } },
    { label: t('时限', 'Deadline'), render: (c) => (c.status === 'closed'
      ? html`<span class="muted">${t('已结案', 'Closed')} ${fmtTime(c.closed_at)}</span>`
      : html`<${Deadline} due=${c.deadline_at} overdue=${c.overdue} now=${now} />`) },
    { label: t('上报时间', 'Reported'), render: (c) => fmtTime(c.reported_at) },
  ];

  const title = user.role === 'grid_worker' ? t('我的案件', 'My cases') : t('辖区案件', 'Cases');
  const canReport = ['grid_worker', 'community', 'street', 'district'].includes(user.role);
  return html`<${Page} title=${title} wide actions=${html`
      ${canReport ? html`<a class="cw-button" href="/report">${t('上报案件', 'Report a case')}</a>` : null}
      <button type="button" onClick=${() => load(false)} disabled=${state.loading}>${t('刷新', 'Refresh')}</button>`}>
    <${Filters} filters=${filters} onChange=${setFilters} places=${places} onReset=${() => setFilters({})} />
    <${ErrorNote} error=${state.error} />
    ${state.rows === null ? (state.loading ? html`<${Loading} />` : null) : html`
      <p class="cw-count" role="status">${state.loading ? t('加载中…', 'Loading…')
    : t(`共显示 ${state.rows.length} 件${state.more ? '（还有更多）' : ''}`, `${state.rows.length} shown${state.more ? ' (more available)' : ''}`)}</p>
      <${Table} caption=${title} columns=${columns} rows=${state.rows} rowKey=${(c) => c.id}
        empty=${Object.keys(filters).length ? t('没有符合筛选条件的案件', 'No case matches the filters') : t('暂无案件', 'No cases yet')} />
      ${state.more ? html`<p class="cw-more"><button type="button" onClick=${() => load(true)} disabled=${state.loading}>
        ${t('加载更多', 'Load more')}</button></p>` : null}`}
  <//>`;
}
