// Where a case came from (案件来源), positions typed from Chinese map apps (坐标系), a resident's
// report waiting to be verified (待核实) and the expected resolution time (预计办结时间): the words
// and small pieces the report form, the verification page and the case page share.
import { html } from '../../vendor/preact-htm.mjs';
import { fmtDuration, fmtTime, t } from '../i18n.js';
import { caseStatusName } from '../ref.js';

// What a staff report may say it came from (未诉先办 comes from a hotspot, a resident's own
// report through Open311), in the order the form offers them.
export const STAFF_SOURCES = [
  ['grid_patrol', '网格巡查', 'Grid patrol'],
  ['resident', '群众反映（网格员代报）', 'A resident told me'],
  ['hotline', '12345热线', '12345 hotline'],
  ['wechat_group', '微信群', 'WeChat group'],
];
const SOURCE = {
  grid_patrol: ['网格巡查', 'Grid patrol'],
  resident: ['群众上报', 'Resident report'],
  hotline: ['12345热线', '12345 hotline'],
  wechat_group: ['微信群', 'WeChat group'],
  proactive: ['未诉先办', 'Proactive'],
};
export const sourceName = (s) => (SOURCE[s] ? t(...SOURCE[s]) : s ?? '—');

// The coordinate systems a pasted position may be in; the phone's GPS and a tap on the grid
// map are WGS-84.
export const COORD_SYSTEMS = [
  ['gcj02', 'GCJ-02（高德、腾讯、微信）', 'GCJ-02 (Amap, Tencent, WeChat)'],
  ['bd09', 'BD-09（百度地图）', 'BD-09 (Baidu Maps)'],
  ['wgs84', 'WGS-84（GPS、天地图）', 'WGS-84 (GPS, Tianditu)'],
];
export const coordName = (c) => {
  const x = COORD_SYSTEMS.find(([k]) => k === c);
  return x ? t(x[1], x[2]) : c;
};

// "37.8866, 112.5362" or "112.5362,37.8866" (高德/百度 copy longitude first): two numbers, read
// by their range in China (latitude 3–54, longitude 73–136). null when it is not a position.
export function parseCoords(text) {
  const nums = String(text ?? '').trim().match(/-?\d+(?:\.\d+)?/g);
  if (!nums || nums.length !== 2) return null;
  const [a, b] = nums.map(Number);
  const isLat = (x) => x >= 3 && x <= 54;
  const isLon = (x) => x >= 73 && x <= 136;
  if (isLat(a) && isLon(b)) return { lat: a, lon: b };
  if (isLon(a) && isLat(b)) return { lat: b, lon: a };
  return null;
}

// Case statuses with the resident's report waiting for the grid worker's check.
export const statusLabel = (s) => (s === 'to_verify' ? t('待核实', 'To verify') : caseStatusName(s));

// 预计办结时间 — tracking's forecast as intake keeps it. Never a past time as "expected": once
// resolved it is the resolution; a forecast already past while the case is open is not shown.
export function expectedOf(c, now = Date.now()) {
  if (!c?.expected_resolution_at) return null;
  const at = new Date(c.expected_resolution_at).getTime();
  if (c.expected_basis === 'resolved') return { resolved: true, at: c.expected_resolution_at };
  if (c.status === 'closed' || Number.isNaN(at) || at <= now) return null;
  const earliest = c.expected_earliest && new Date(c.expected_earliest).getTime() > now ? c.expected_earliest : null;
  return { resolved: false, at: c.expected_resolution_at, earliest, latest: c.expected_latest, basis: c.expected_basis };
}

const BASIS = {
  history: ['按该部门同类案件的办理历史', "from the department's history for this category"],
  category: ['按同类案件的办理历史', 'from the history of this category'],
  deadline: ['按办结时限', 'from the deadline'],
};

export function ExpectedResolution({ c, now = Date.now(), breach }) {
  const e = expectedOf(c, now);
  if (!e) return html`<span class="muted expected-none">${t('暂无预测', 'No forecast yet')}</span>`;
  if (e.resolved) return html`<span class="expected">${t('已办结于 ', 'Resolved ')}${fmtTime(e.at)}</span>`;
  const left = (new Date(e.at).getTime() - now) / 1000;
  return html`<span class="expected">
    <strong>${fmtTime(e.at)}</strong> <span class="muted small">${t(`（约${fmtDuration(left)}后）`, ` (in about ${fmtDuration(left)})`)}</span>
    ${e.earliest || e.latest ? html`<span class="cw-block small">${t('可能范围：', 'Likely between ')}${e.earliest ? fmtTime(e.earliest) : t('现在', 'now')}${t(' 至 ', ' and ')}${fmtTime(e.latest)}</span>` : null}
    ${BASIS[e.basis] ? html`<span class="cw-block muted small">${t(...BASIS[e.basis])}</span>` : null}
    ${breach != null ? html`<span class="cw-block expected-breach small">${t('预计超期：', 'Likely late: ')}${breach}</span>` : null}
  </span>`;
}
