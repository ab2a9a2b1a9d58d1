// The jurisdiction map of the command board: grid polygons from intake's GeoJSON drawn with
// Leaflet on a plain background (no tile server: a government intranet has no internet),
// communities and streets outlined, late (红灯) and near-late (黄灯) clocks shown as a tinted
// grid and, where the case's position is known, a marker at it.
import { t } from '../i18n.js';
import { areaName, clockName, deptName, ref } from '../ref.js';
import { loadLeaflet } from '../ui.js';
import { lateText } from './items.js';
import { isPredicted } from './forecast.js';

const inside = (path, area) => !area || path === area || path.startsWith(`${area}/`);

function rings(geometry) {
  if (!geometry) return [];
  if (geometry.type === 'Polygon') return geometry.coordinates;
  if (geometry.type === 'MultiPolygon') return geometry.coordinates.flat();
  return [];
}

// The outline of a group of grids: the edges only one of them has (shared edges cancel out).
// Grids that do not share exact edges simply keep their own outline.
function outline(features) {
  const edges = new Map();
  const key = ([x, y]) => `${x.toFixed(7)},${y.toFixed(7)}`;
  for (const f of features) {
    for (const ring of rings(f.geometry)) {
      for (let i = 0; i + 1 < ring.length; i += 1) {
        const a = ring[i], b = ring[i + 1];
        const ka = key(a), kb = key(b);
        if (ka === kb) continue;
        const k = ka < kb ? `${ka}|${kb}` : `${kb}|${ka}`;
        const e = edges.get(k);
        if (e) e.count += 1; else edges.set(k, { a, b, count: 1 });
      }
    }
  }
  return [...edges.values()].filter((e) => e.count === 1)
    .map(({ a, b }) => [[a[1], a[0]], [b[1], b[0]]]);
}

function groupBy(features, depth) {
  const groups = new Map();
  for (const f of features) {
    const p = f.properties.path.split('/').slice(0, depth).join('/');
    if (!groups.has(p)) groups.set(p, []);
    groups.get(p).push(f);
  }
  return groups;
}

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'text') e.textContent = v; else e.setAttribute(k, v);
  }
  children.filter(Boolean).forEach((c) => e.append(c));
  return e;
}

// A popup listing the items of one grid (or one case position), each linking to its case.
function itemsPopup(title, items, now) {
  const list = el('ul', { class: 'map-popup-list' });
  for (const it of items) {
    const predicted = isPredicted(it);
    const tone = it.board === 'overdue' ? 'red' : predicted ? 'purple' : 'yellow';
    const word = it.board === 'overdue' ? t('超时', 'Late') : predicted ? t('预计超时', 'Likely late') : t('临期', 'Near');
    list.append(el('li', {},
      el('a', { href: `/cases/${it.case_id}`, text: it.case_no }),
      el('span', { class: `chip ${tone}`, text: word }),
      el('span', { text: ` ${deptName(it.department_id) || it.department_name} · ${clockName(it.clock)} · ${lateText(it, now)}` })));
  }
  return el('div', { class: 'map-popup' }, el('strong', { text: title }), list);
}

export class BoardMap {
  // area: the user's subtree (or the filtered one), drawn and fitted.
  static async create(container, { area }) {
    const L = await loadLeaflet();
    return new BoardMap(L, container, area);
  }

  constructor(L, container, area) {
    this.L = L;
    this.area = area;
    const all = (ref.features?.features ?? []).filter((f) => f.geometry);
    this.grids = all.filter((f) => f.properties.level === 'grid' && inside(f.properties.path, area));
    this.map = L.map(container, {
      attributionControl: false, zoomSnap: 0.25, zoomDelta: 0.5, wheelPxPerZoomLevel: 120,
      minZoom: 10, maxZoom: 19, keyboard: true, zoomControl: false,
    });
    L.control.zoom({ zoomInTitle: t('放大', 'Zoom in'), zoomOutTitle: t('缩小', 'Zoom out') }).addTo(this.map);
    this.gridLayers = new Map();
    const gridStyle = this.baseStyle();
    this.gridLayer = L.geoJSON({ type: 'FeatureCollection', features: this.grids }, {
      style: (f) => ({ ...gridStyle, className: `grid grid-${f.properties.code}` }),
      onEachFeature: (f, layer) => {
        this.gridLayers.set(f.properties.path, layer);
        layer.bindTooltip(f.properties.name, { sticky: true, className: 'grid-tip', direction: 'top' });
      },
    }).addTo(this.map);

    // communities (and streets, when more than one is drawn) outlined, communities named
    const streets = groupBy(this.grids, 2);
    const communities = groupBy(this.grids, 3);
    this.outlines = L.layerGroup().addTo(this.map);
    if (streets.size > 1) {
      for (const [, fs] of streets) {
        L.polyline(outline(fs), { color: '#e3eeff', weight: 3.5, opacity: 1, interactive: false,
          className: 'street-outline' }).addTo(this.outlines);
      }
    }
    for (const [path, fs] of communities) {
      const line = L.polyline(outline(fs), { color: '#7aa5de', weight: 1.75, opacity: 0.95,
        interactive: false, className: 'community-outline' }).addTo(this.outlines);
      if (communities.size > 1) {
        L.tooltip({ permanent: true, direction: 'center', className: 'community-label', interactive: false })
          .setLatLng(line.getBounds().getCenter()).setContent(areaName(path)).addTo(this.outlines);
      }
    }
    // one community: its grids are named on the map (without the community's name)
    if (communities.size === 1) {
      const [path] = communities.keys();
      const prefix = areaName(path);
      for (const [, layer] of this.gridLayers) {
        const name = layer.feature.properties.name;
        L.tooltip({ permanent: true, direction: 'center', className: 'community-label grid-label', interactive: false })
          .setLatLng(layer.getBounds().getCenter())
          .setContent(name.startsWith(prefix) && name.length > prefix.length ? name.slice(prefix.length) : name)
          .addTo(this.outlines);
      }
    }
    this.streetsDrawn = streets.size > 1;
    this.markers = L.layerGroup().addTo(this.map);
    // Until someone pans or zooms by hand, the view follows the focus when the screen resizes.
    this.focused = area;
    this.touched = false;
    this.map.on('dragstart', () => { this.touched = true; });
    this.map.on('zoomstart', () => { if (!this.moving) this.touched = true; });
    this.fit();
    this.resize = new ResizeObserver(() => {
      this.map.invalidateSize({ pan: false });
      if (!this.touched) this.focus(this.focused);
    });
    this.resize.observe(container);
  }

  view(fn) {
    this.moving = true;
    try { fn(); } finally { this.moving = false; }
  }

  baseStyle() {
    return { color: '#4b6f9b', weight: 1, opacity: 0.9, fillColor: '#173150', fillOpacity: 0.85 };
  }

  hasGrids() { return this.grids.length > 0; }

  fit() {
    const b = this.gridLayer.getBounds();
    this.view(() => {
      if (b.isValid()) this.map.fitBounds(b, { padding: [16, 16], animate: false });
      else this.map.setView([37.87, 112.55], 13, { animate: false });
    });
  }

  // items: board items with `board` ('overdue' | 'near'); positions: case_id → {lat, lon}
  update(items, positions, now = Date.now()) {
    const { L } = this;
    const byGrid = new Map();
    for (const it of items) {
      const grid = this.gridOf(it.area_path);
      if (!grid) continue;
      if (!byGrid.has(grid)) byGrid.set(grid, []);
      byGrid.get(grid).push(it);
    }
    for (const [path, layer] of this.gridLayers) {
      const its = byGrid.get(path) ?? [];
      const late = its.filter((i) => i.board === 'overdue').length;
      const near = its.length - late;
      const tone = late ? 'overdue' : near ? 'near' : null;
      layer.setStyle(tone === 'overdue'
        ? { color: '#ff8a80', weight: 2, fillColor: '#e53935', fillOpacity: 0.78 }
        : tone === 'near'
          ? { color: '#ffe082', weight: 2, fillColor: '#f9a825', fillOpacity: 0.72 }
          : this.baseStyle());
      const node = layer.getElement?.();
      if (node) {
        node.classList.toggle('zone-overdue', tone === 'overdue');
        node.classList.toggle('zone-near', tone === 'near');
      }
      const name = layer.feature.properties.name;
      layer.setTooltipContent(its.length
        ? `${name} · ${t(`超时 ${late}`, `late ${late}`)} · ${t(`临期 ${near}`, `near ${near}`)}`
        : name);
      layer.unbindPopup();
      if (its.length) {
        layer.bindPopup(() => itemsPopup(name, its, Date.now()), { className: 'board-popup' });
        if (tone === 'overdue') layer.bringToFront();
      }
    }
    this.markers.clearLayers();
    // near first, so the late ones are drawn on top
    const placed = items.filter((i) => positions.get(i.case_id)?.lat != null)
      .sort((a, b) => (a.board === b.board ? 0 : a.board === 'overdue' ? 1 : -1));
    for (const it of placed) {
      const p = positions.get(it.case_id);
      const tone = it.board === 'overdue' ? 'overdue' : 'near';
      const m = L.circleMarker([p.lat, p.lon], {
        radius: tone === 'overdue' ? 9 : 8, weight: 2.5, color: '#ffffff',
        fillColor: tone === 'overdue' ? '#e53935' : '#f9a825', fillOpacity: 1,
        className: `case-marker ${tone} case-${it.case_no}`,
      });
      m.bindTooltip(`${it.case_no} · ${tone === 'overdue' ? t('超时', 'Late') : t('临期', 'Near')} · ${lateText(it, now)}`,
        { direction: 'top', className: 'grid-tip' });
      m.bindPopup(() => itemsPopup(p.address || it.case_no, [it], Date.now()), { className: 'board-popup' });
      m.addTo(this.markers);
    }
    return { placed: placed.length, tinted: byGrid.size };
  }

  // Zoom to a part of the drawn subtree (a filter), or back to all of it.
  focus(area) {
    this.focused = area;
    this.touched = false;
    if (!area || area === this.area) { this.fit(); return; }
    const bounds = this.L.latLngBounds([]);
    for (const [path, layer] of this.gridLayers) if (inside(path, area)) bounds.extend(layer.getBounds());
    if (bounds.isValid()) this.view(() => this.map.fitBounds(bounds, { padding: [24, 24], maxZoom: 17, animate: false }));
    else this.fit();
  }

  gridOf(areaPath) {
    if (!areaPath) return null;
    if (this.gridLayers.has(areaPath)) return areaPath;
    // a path below a grid (micro-grid, building) lies in the grid that holds it
    for (const path of this.gridLayers.keys()) if (areaPath.startsWith(`${path}/`)) return path;
    return null;
  }

  destroy() {
    this.resize?.disconnect();
    this.map.remove();
  }
}
