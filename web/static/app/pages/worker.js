// 我的网格 — the grid worker's home on his phone: his grids on a small map, a big button to
// report what he finds, his counts (open, late, to verify) and his recent cases.
import { html, useEffect, useMemo, useRef, useState } from '../../vendor/preact-htm.mjs';
import { api } from '../api.js';
import { fmtTime, t } from '../i18n.js';
import { areaName, categoryPath, placeName, priorityName, ref } from '../ref.js';
import { Chip, Deadline, Empty, ErrorNote, Loading, Page, loadLeaflet, useAsync, useNow } from '../ui.js';
import { statusLabel } from '../casework/sources.js';
import { pendingCount } from './verify.js';

// --- the jurisdiction's grids --------------------------------------------------------------

const gridFeatures = () => (ref.features?.features ?? []).filter((f) => f.properties.level === 'grid');

// The grids a user may report in: a grid worker's own grids, or every grid of an area user's
// subtree (community, street, district).
export function reportableGrids(user) {
  const grids = gridFeatures();
  if (user.role === 'grid_worker') {
    const mine = new Set(user.grids ?? []);
    return grids.filter((f) => mine.has(f.properties.path));
  }
  const root = user.area ?? '';
  return grids.filter((f) => f.properties.path === root || f.properties.path.startsWith(`${root}/`));
}

// Grids next to the given ones (same community) for orientation on the map.
export function neighbourGrids(grids) {
  const mine = new Set(grids.map((f) => f.properties.code));
  const parents = new Set(grids.map((f) => f.properties.parent_code));
  return gridFeatures().filter((f) => parents.has(f.properties.parent_code) && !mine.has(f.properties.code));
}

// --- the map (no tiles: grid polygons on a plain background) -------------------------------

const STYLE = {
  mine: { color: '#b3261e', weight: 2, fillColor: '#b3261e', fillOpacity: 0.12 },
  selected: { color: '#b3261e', weight: 4, fillColor: '#b3261e', fillOpacity: 0.28 },
  other: { color: '#7a7f85', weight: 1, dashArray: '4 4', fillColor: '#9aa0a6', fillOpacity: 0.06 },
};

function polygonOf(L, feature, style, interactive) {
  if (!feature.geometry) return null;
  const layers = L.geoJSON(feature.geometry, {
    style: { ...style, className: `grid-poly grid-${feature.properties.code}` },
    interactive,
  }).getLayers();
  return layers[0] ?? null;
}

// A small Leaflet map of grids. `onPick(latlng)` makes it a picker (tap to place a point);
// `fitKey` changes when the view should fit again (to the selected grid, else all of them).
export function GridMap({ grids, context = [], selected, point, onPick, label, fitKey, tall }) {
  const el = useRef(null);
  const st = useRef({ map: null, shapes: null, marker: null, pick: null });
  const [ready, setReady] = useState(false);
  const [error, setError] = useState(null);
  st.current.pick = onPick;

  useEffect(() => {
    let live = true;
    loadLeaflet().then((L) => {
      if (!live || !el.current) return;
      const map = L.map(el.current, {
        zoomSnap: 0.25, attributionControl: false, scrollWheelZoom: false, tapTolerance: 20,
      });
      map.on('click', (e) => st.current.pick?.(e.latlng));
      st.current.map = map;
      setReady(true);
    }).catch((e) => live && setError(e));
    return () => { live = false; st.current.map?.remove(); st.current.map = null; };
  }, []);

  // the polygons
  useEffect(() => {
    const { map } = st.current;
    if (!ready || !map) return;
    const L = window.L;
    st.current.shapes?.remove();
    const group = L.layerGroup();
    for (const f of context) polygonOf(L, f, STYLE.other, false)?.addTo(group);
    const permanent = grids.length <= 12;
    for (const f of grids) {
      const poly = polygonOf(L, f, f.properties.code === selected ? STYLE.selected : STYLE.mine, true);
      if (!poly) continue;
      poly.bindTooltip(f.properties.name, {
        permanent: permanent || f.properties.code === selected, direction: 'center', className: 'grid-label',
      });
      poly.addTo(group);
    }
    group.addTo(map);
    st.current.shapes = group;
  }, [ready, grids, context, selected]);

  // the view
  useEffect(() => {
    const { map } = st.current;
    if (!ready || !map) return;
    const L = window.L;
    const focus = grids.filter((f) => f.geometry && (!selected || f.properties.code === selected));
    const shown = focus.length ? focus : grids.filter((f) => f.geometry);
    if (!shown.length) { map.setView([37.885, 112.53], 13); return; }
    const bounds = L.geoJSON({ type: 'FeatureCollection', features: shown }).getBounds();
    map.invalidateSize();
    map.fitBounds(bounds, { padding: [16, 16], maxZoom: 18 });
  }, [ready, fitKey]);

  // the point
  useEffect(() => {
    const s = st.current;
    if (!ready || !s.map) return;
    const L = window.L;
    if (!point) { s.marker?.remove(); s.marker = null; return; }
    const at = [point.lat, point.lon];
    if (!s.marker) {
      s.marker = L.circleMarker(at, { radius: 9, color: '#fff', weight: 3, fillColor: '#0b57d0',
        fillOpacity: 1, interactive: false, className: 'picked-point' }).addTo(s.map);
    } else s.marker.setLatLng(at);
    if (!s.map.getBounds().contains(at)) s.map.panTo(at);
  }, [ready, point?.lat, point?.lon]);

  if (error) return html`<${ErrorNote} error=${new Error(t('地图加载失败', 'The map could not be loaded'))} />`;
  return html`<div class=${`grid-map${tall ? ' tall' : ''}`} ref=${el} role="region" aria-label=${label}></div>`;
}

// --- cases ----------------------------------------------------------------------------------

// What a grid worker acts on: every status but 已结案.
export const OPEN_STATUSES = ['reported', 'whistled', 'unroutable', 'dispatched', 'signed_for',
  'resolved', 'rework', 'reopened'];
const PAGE = 200;

const STATUS_TONE = {
  reported: 'blue', whistled: 'blue', unroutable: 'yellow', dispatched: 'blue', signed_for: 'blue',
  resolved: 'yellow', rework: 'red', closed: 'green', reopened: 'yellow', to_verify: 'yellow',
};
export const StatusChip = ({ status }) => html`<${Chip} tone=${STATUS_TONE[status] ?? 'plain'}>${statusLabel(status)}<//>`;

export function CaseCard({ c, now, user }) {
  const open = c.status !== 'closed';
  return html`<li class="case-card">
    <div class="case-card-head">
      <a class="case-no" href=${`/cases/${c.id}`}>${c.case_no}</a>
      <${StatusChip} status=${c.status} />
      ${c.priority === 'urgent' ? html`<${Chip} tone="red">${priorityName('urgent')}<//>` : null}
    </div>
    <p class="case-cat">${categoryPath(c.category)}</p>
    <p class="case-desc">${c.description}</p>
    <p class="case-place small"><span class="sr-only">${t('地点：', 'Place: ')}</span>
      ${areaName(c.grid_code)}${c.location?.address ? ` · ${c.location.address}` : ''}</p>
    <div class="case-foot small">
      ${open ? html`<span>${t('时限', 'Deadline')} <${Deadline} due=${c.deadline_at} overdue=${c.overdue} now=${now} /></span>`
        : html`<span class="muted">${t('结案于', 'Closed')} ${fmtTime(c.closed_at)}</span>`}
      <span class="muted">${t('上报', 'Reported')} ${fmtTime(c.reported_at)}${user && c.reporter !== user.name ? ` · ${c.reporter}` : ''}</span>
    </div>
  </li>`;
}

async function loadCases() {
  // The latest cases, and every open one (per status: a worker's open cases are few) for the
  // counts, so the figures do not depend on how many closed cases came after them.
  const [recent, ...open] = await Promise.all([
    api('intake', '/cases', { query: { limit: 30 } }),
    ...OPEN_STATUSES.map((status) => api('intake', '/cases', { query: { status, limit: PAGE } })),
  ]);
  const all = open.flat().sort((a, b) => b.reported_at.localeCompare(a.reported_at));
  return { recent, open: all, capped: open.some((xs) => xs.length >= PAGE) };
}

const FILTERS = [
  ['recent', '最近', 'Recent'],
  ['open', '未结案', 'Open'],
  ['late', '超时', 'Late'],
  ['verify', '待核查', 'To verify'],
];

// 群众上报待核实: residents' reports in my grids waiting for my check on site, with their count.
function VerifyLink({ n }) {
  const label = n === undefined ? '…' : String(n);
  return html`<a class=${`pv-cta${n ? ' waiting' : ''}`} href="/verify">
    <span>${t('群众上报待核实', 'Residents’ reports to verify')}</span>
    <span class="pv-badge">${label}<span class="sr-only">${t('件', ' waiting')}</span></span></a>`;
}

export default function Worker({ user }) {
  const now = useNow();
  const grids = useMemo(() => reportableGrids(user), [user]);
  const context = useMemo(() => neighbourGrids(grids), [grids]);
  const cases = useAsync(loadCases, []);
  const waiting = useAsync(pendingCount, []);
  const [filter, setFilter] = useState('recent');

  // Back on the phone after a walk: show what changed meanwhile.
  useEffect(() => {
    const onShow = () => { if (document.visibilityState === 'visible') { cases.reload(); waiting.reload(); } };
    document.addEventListener('visibilitychange', onShow);
    return () => document.removeEventListener('visibilitychange', onShow);
  }, [cases.reload, waiting.reload]);

  const d = cases.data;
  const lists = d && {
    recent: d.recent,
    open: d.open,
    late: d.open.filter((c) => c.overdue),
    verify: d.open.filter((c) => c.status === 'resolved'),
  };
  const count = (k) => (lists ? `${lists[k].length}${d.capped && k !== 'recent' ? '+' : ''}` : '…');
  const shown = lists?.[filter] ?? [];
  const emptyText = {
    recent: t('还没有案件。发现问题请点“上报问题”。', 'No cases yet. Tap “Report a problem” when you find one.'),
    open: t('没有未结案的案件', 'No open cases'),
    late: t('没有超时的案件', 'No late cases'),
    verify: t('没有待核查的案件', 'Nothing to verify'),
  }[filter];

  return html`<${Page} title=${t('我的网格', 'My grids')}><div class="wk wk-home">
    <a class="report-cta" href="/report">
      <span class="report-cta-icon" aria-hidden="true">＋</span>${t('上报问题', 'Report a problem')}</a>
    <${VerifyLink} n=${waiting.data} />

    <section class="card worker-grids" aria-labelledby="grids-h">
      <h2 id="grids-h">${t('负责网格', 'My grids')}</h2>
      ${grids.length ? html`
        <${GridMap} grids=${grids} context=${context} label=${t('我的网格地图', 'Map of my grids')} fitKey="all" />
        <ul class="grid-names">${grids.map((f) => html`<li key=${f.properties.code}>
          <strong>${f.properties.name}</strong>
          <span class="muted small">${placeName(f.properties.path.split('/').slice(0, -1).join('/'))}</span></li>`)}</ul>`
        : html`<${Empty}>${t('尚未为您分配网格，请联系系统管理员。', 'No grid is assigned to you yet; ask the administrator.')}<//>`}
    </section>

    <section class="worker-cases" aria-labelledby="cases-h">
      <div class="section-head">
        <h2 id="cases-h">${t('我的案件', 'My cases')}</h2>
        <button type="button" class="link" onClick=${cases.reload} disabled=${cases.loading}>
          ${cases.loading ? t('刷新中…', 'Refreshing…') : t('刷新', 'Refresh')}</button>
      </div>
      <div class="case-filters" role="group" aria-label=${t('案件筛选', 'Filter cases')}>
        ${FILTERS.map(([k, zh, en]) => html`<button type="button" key=${k}
          class=${`case-filter ${k}${filter === k ? ' on' : ''}`} aria-pressed=${filter === k}
          onClick=${() => setFilter(k)}>
          <span class="n">${k === 'recent' ? (lists ? lists.recent.length : '…') : count(k)}</span>
          <span class="l">${t(zh, en)}</span></button>`)}
      </div>
      <${ErrorNote} error=${cases.error} />
      ${!d && cases.loading ? html`<${Loading} />` : null}
      ${d ? (shown.length
        ? html`<ul class="list case-list" aria-label=${t('案件列表', 'Cases')}>${shown.map((c) => html`<${CaseCard} key=${c.id} c=${c} now=${now} user=${user} />`)}</ul>`
        : html`<${Empty}>${emptyText}<//>`) : null}
      <p class="more"><a href="/cases">${t('查看全部案件', 'All cases')} →</a></p>
    </section>
  </div><//>`;
}
