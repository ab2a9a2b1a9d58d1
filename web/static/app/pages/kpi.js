// 考核 — KPIs per department and per area for a period (三率: 响应率, 解决率, 满意率, as bar
// charts with the same figures as tables), their trend week by week over the last 8 weeks,
// and the ranking with the red/black list (红黑榜) and its thresholds in words. CSV exports
// for Excel. Department staff get their own department's figures (the server scopes them)
// and no ranking. Below: the seeds' counts, the integrity findings and the SLA backtest
// (kpi/), for the roles allowed to read them.
import { html, useEffect, useMemo, useState } from '../../vendor/preact-htm.mjs';
import { api, download } from '../api.js';
import { RATE_COLORS, RateBars, RateLines } from '../board/charts.js';
import Insights from '../kpi/insights.js';
import { fmtTime, t } from '../i18n.js';
import { areaName, deptName, levelName, ref } from '../ref.js';
import { ErrorNote, Field, Loading, Page, toast, useAsync } from '../ui.js';

// --- dates (Beijing) ----------------------------------------------------------------------
const DAY = new Intl.DateTimeFormat('en-CA', { timeZone: 'Asia/Shanghai', year: 'numeric', month: '2-digit', day: '2-digit' });
const today = () => DAY.format(new Date());
const iso = (d) => d.toISOString().slice(0, 10);
const utc = (y, m, d) => iso(new Date(Date.UTC(y, m, d)));
const addDays = (s, n) => { const d = new Date(`${s}T00:00:00Z`); d.setUTCDate(d.getUTCDate() + n); return iso(d); };

const PRESETS = [
  ['month', '本月', 'This month'], ['last_month', '上月', 'Last month'],
  ['quarter', '本季度', 'This quarter'], ['year', '本年度', 'This year'],
  ['30d', '近30天', 'Last 30 days'], ['custom', '自定义', 'Custom'],
];

function presetRange(preset, now = today()) {
  const [y, m] = now.split('-').map(Number); // m: 1–12
  const q = Math.floor((m - 1) / 3);
  switch (preset) {
    case 'last_month': return { from: utc(y, m - 2, 1), to: utc(y, m - 1, 0) };
    case 'quarter': return { from: utc(y, q * 3, 1), to: utc(y, q * 3 + 3, 0) };
    case 'year': return { from: `${y}-01-01`, to: `${y}-12-31` };
    case '30d': return { from: addDays(now, -29), to: now };
    default: return { from: utc(y, m - 1, 1), to: utc(y, m, 0) };
  }
}

function presetOf(from, to) {
  return PRESETS.find(([p]) => p !== 'custom' && JSON.stringify(presetRange(p)) === JSON.stringify({ from, to }))?.[0] ?? 'custom';
}

// The last 8 weeks, Monday to Sunday, the current one last.
function lastWeeks(n = 8) {
  const now = today();
  const dow = (new Date(`${now}T00:00:00Z`).getUTCDay() + 6) % 7; // Monday 0
  const monday = addDays(now, -dow);
  return Array.from({ length: n }, (_, i) => {
    const from = addDays(monday, -7 * (n - 1 - i));
    return { from, to: addDays(from, 6), label: `${from.slice(5).replace('-', '/')}–${addDays(from, 6).slice(5).replace('-', '/')}` };
  });
}

// --- metrics as people read them ------------------------------------------------------------
const METRICS = {
  received: ['受理量', 'received'], signed_for_on_time: ['按时签收数', 'signed for on time'],
  resolved: ['办结数', 'resolved'], resolved_on_time: ['按时办结数', 'resolved on time'],
  overdue_now: ['当前超时数', 'late now'], reworked: ['返工数', 'reworked'],
  rejections: ['推诿（退单）数', 'rejections'], extensions: ['延期数', 'extensions'],
  response_rate: ['响应率', 'response rate'], resolution_rate: ['解决率', 'resolution rate'],
  satisfaction_rate: ['满意率', 'satisfaction rate'], on_time_rate: ['按时办结率', 'on-time rate'],
  rework_rate: ['返工率', 'rework rate'],
};
const metricName = (m) => (METRICS[m] ? t(...METRICS[m]) : m);
const RATES = ['response_rate', 'resolution_rate', 'satisfaction_rate'];
const OPS = { '>=': '≥', '>': '>', '<=': '≤', '<': '<' };
const criterion = ([metric, op, value]) => `${metricName(metric)} ${OPS[op] ?? op} ${
  metric.endsWith('_rate') ? `${Math.round(value * 1000) / 10}%` : value}`;

const unitName = (unit, kind, name) => (kind === 'department' ? deptName(unit) || name : areaName(unit));

export default function Kpi({ query, user }) {
  const isDept = user.role === 'department';
  const initial = query.from && query.to ? { from: query.from, to: query.to } : presetRange('month');
  const [draft, setDraft] = useState({ ...initial, preset: presetOf(initial.from, initial.to), area: query.area ?? '', level: query.level ?? '' });
  const [applied, setApplied] = useState({ from: initial.from, to: initial.to, area: query.area ?? '', level: query.level ?? '' });
  const [rankUnit, setRankUnit] = useState('department');
  const [formError, setFormError] = useState(null);
  const key = JSON.stringify(applied);
  const base = { from: applied.from, to: applied.to, area: applied.area || undefined };

  useEffect(() => {
    const u = new URL(location.href);
    Object.entries(applied).forEach(([k, v]) => (v ? u.searchParams.set(k, v) : u.searchParams.delete(k)));
    history.replaceState(history.state, '', u.pathname + u.search);
  }, [key]);

  const departments = useAsync(() => api('tracking', '/kpi/departments', { query: base }), [key]);
  const areas = useAsync(() => api('tracking', '/kpi/areas', { query: { ...base, level: applied.level || undefined } }), [key]);
  const weeks = useMemo(() => lastWeeks(8), []);
  const trend = useAsync(() => Promise.all(weeks.map((w) => api('tracking', '/kpi/departments',
    { query: { from: w.from, to: w.to, area: applied.area || undefined } }).then((r) => ({ ...w, total: r.total })))), [applied.area]);
  const ranking = useAsync(() => (isDept ? Promise.resolve(null) : api('tracking', '/kpi/ranking', {
    query: { ...base, unit: rankUnit, level: rankUnit === 'area' ? applied.level || undefined : undefined },
  })), [key, rankUnit]);
  const thresholds = useAsync(() => (isDept ? api('tracking', '/kpi/thresholds') : Promise.resolve(null)), []);

  const apply = (e) => {
    e.preventDefault();
    if (!draft.from || !draft.to) { setFormError(t('请选择开始和结束日期', 'Choose a start and an end date')); return; }
    if (draft.to < draft.from) { setFormError(t('结束日期不能早于开始日期', 'The end date cannot be before the start')); return; }
    setFormError(null);
    setApplied({ from: draft.from, to: draft.to, area: draft.area, level: draft.level });
  };
  const choose = (preset) => setDraft((d) => ({ ...d, preset, ...(preset === 'custom' ? {} : presetRange(preset)) }));
  const exportCsv = async (path, extra = {}) => {
    try {
      await download('tracking', path, { ...base, ...extra, format: 'csv' });
      toast(t('已导出 CSV 文件', 'CSV file exported'));
    } catch (err) { toast(err.message, 'error'); }
  };

  // area scope and levels below it
  const scopeLevel = ref.areas.get(user.area)?.level ?? 'district';
  const LEVELS = ['district', 'street', 'community', 'grid'];
  const chosenLevel = draft.area ? ref.areas.get(draft.area)?.level ?? scopeLevel : scopeLevel;
  const deeper = LEVELS.slice(LEVELS.indexOf(chosenLevel) + 1);
  const scopeAreas = (ref.features?.features ?? []).map((f) => f.properties)
    .filter((p) => (p.level === 'street' || p.level === 'community') && (p.path.startsWith(`${user.area}/`) || isDept))
    .sort((a, b) => a.path.localeCompare(b.path));

  const periodText = t(`${applied.from} 至 ${applied.to}`, `${applied.from} to ${applied.to}`);
  return html`<${Page} wide title=${t('考核', 'KPIs')}
    actions=${html`<span class="muted">${isDept ? deptName(user.department_id) : areaName(applied.area || user.area)} · ${periodText}</span>`}>
    <form class="card kpi-period" onSubmit=${apply} aria-label=${t('统计条件', 'Period and scope')}>
      <${Field} label=${t('统计周期', 'Period')}>${(id) => html`
        <select id=${id} value=${draft.preset} onChange=${(e) => choose(e.target.value)}>
          ${PRESETS.map(([k, zh, en]) => html`<option value=${k}>${t(zh, en)}</option>`)}
        </select>`}<//>
      <${Field} label=${t('开始日期', 'From')}>${(id) => html`
        <input id=${id} type="date" value=${draft.from} max=${draft.to}
          onInput=${(e) => setDraft({ ...draft, from: e.target.value, preset: 'custom' })} />`}<//>
      <${Field} label=${t('结束日期（含当天）', 'To (inclusive)')}>${(id) => html`
        <input id=${id} type="date" value=${draft.to} min=${draft.from}
          onInput=${(e) => setDraft({ ...draft, to: e.target.value, preset: 'custom' })} />`}<//>
      ${scopeAreas.length ? html`<${Field} label=${t('辖区范围', 'Area')}>${(id) => html`
        <select id=${id} value=${draft.area} onChange=${(e) => setDraft({ ...draft, area: e.target.value, level: '' })}>
          <option value="">${isDept ? t('全部', 'All') : areaName(user.area)}</option>
          ${scopeAreas.map((p) => html`<option value=${p.path}>${p.level === 'community' ? '\u3000' : ''}${p.name}</option>`)}
        </select>`}<//>` : null}
      ${deeper.length ? html`<${Field} label=${t('辖区统计层级', 'Areas by level')}>${(id) => html`
        <select id=${id} value=${draft.level} onChange=${(e) => setDraft({ ...draft, level: e.target.value })}>
          <option value="">${t(`默认（${levelName(deeper[0])}）`, `Default (${levelName(deeper[0])})`)}</option>
          ${deeper.map((l) => html`<option value=${l}>${levelName(l)}</option>`)}
        </select>`}<//>` : null}
      <button type="submit" class="primary">${t('查询', 'Show')}</button>
      ${formError ? html`<p class="error" role="alert">${formError}</p>` : null}
    </form>

    <${KpiSection} id="dept" kind="department" title=${t('部门三率', 'Departments: the three rates')}
      state=${departments} onCsv=${() => exportCsv('/kpi/departments')}
      note=${isDept ? t('仅显示本部门的指标。', 'Your own department\'s figures only.') : null} />
    <${KpiSection} id="area" kind="area" title=${t('辖区三率', 'Areas: the three rates')}
      state=${areas} onCsv=${() => exportCsv('/kpi/areas', { level: applied.level || undefined })} />
    <${Trend} state=${trend} weeks=${weeks} />
    ${isDept ? html`<section class="kpi-section" aria-labelledby="rank-h">
        <h2 id="rank-h">${t('红黑榜', 'Red and black list')}</h2>
        <p class="kpi-note">${t('排名与红黑榜由督办和辖区查看；以下是评定标准，供对照本部门指标。',
          'The ranking is for supervisors and area holders; here are the criteria to compare your figures with.')}</p>
        ${thresholds.data ? html`<div class="card"><${Thresholds} data=${thresholds.data.thresholds} /></div>` : html`<${ErrorNote} error=${thresholds.error} />`}
      </section>`
      : html`<${Ranking} state=${ranking} unit=${rankUnit} setUnit=${setRankUnit} />`}
    <${Insights} user=${user} period=${applied} />
  <//>`;
}

function rateCell(r) {
  return html`<td class="num">${r.label}${r.denominator ? html`<span class="muted small"> (${r.numerator}/${r.denominator})</span>` : null}</td>`;
}

function KpiSection({ id, kind, title, state, onCsv, note }) {
  const { data, error, loading } = state;
  const units = data?.units ?? [];
  const names = units.map((u) => unitName(u.unit, kind, u.name));
  const series = RATES.map((r) => ({ label: metricName(r), color: RATE_COLORS[r], values: units.map((u) => u[r].value) }));
  const summary = t(`${title}条形图，共 ${units.length} 个单位；数值见下表`, `${title} bar chart, ${units.length} units; figures in the table below`);
  return html`<section class="kpi-section" aria-labelledby=${`${id}-h`}>
    <div class="panel-head">
      <h2 id=${`${id}-h`}>${title}</h2>
      <button type="button" onClick=${onCsv}>${t('导出 CSV', 'Export CSV')}<span class="sr-only"> ${title}</span></button>
    </div>
    ${note ? html`<p class="kpi-note">${note}</p>` : null}
    <${ErrorNote} error=${error} />
    ${loading && !data ? html`<${Loading} />` : null}
    ${data && !units.length ? html`<p class="empty">${t('该周期内没有派单', 'Nothing was dispatched in this period')}</p>` : null}
    ${units.length ? html`
      <${RateBars} labels=${names} series=${series} summary=${summary} />
      <${KpiTable} caption=${title} kind=${kind} units=${units} total=${data.total} />
      <p class="kpi-note">${t(`统计截至 ${fmtTime(data.as_of)}。响应率 = 按时签收 / 受理；解决率 = 办结 / 受理；满意率 = 4–5 分评价 / 评价数。`,
        `As of ${fmtTime(data.as_of)}. Response = signed for on time / received; resolution = resolved / received; satisfaction = rated 4–5 / rated.`)}</p>` : null}
  </section>`;
}

function KpiTable({ caption, kind, units, total }) {
  const row = (u, isTotal) => html`<tr class=${isTotal ? 'total' : ''}>
    <th scope="row">${isTotal ? t('合计', 'Total') : unitName(u.unit, kind, u.name)}</th>
    <td class="num">${u.received}</td><td class="num">${u.signed_for_on_time}</td>
    <td class="num">${u.resolved}</td><td class="num">${u.resolved_on_time}</td>
    <td class="num">${u.overdue_now}</td><td class="num">${u.reworked}</td>
    <td class="num">${u.rejections}</td><td class="num">${u.extensions}</td>
    ${rateCell(u.response_rate)}${rateCell(u.resolution_rate)}${rateCell(u.satisfaction_rate)}
    ${rateCell(u.on_time_rate)}
    <td class="num">${u.average_handling_hours == null ? '—' : u.average_handling_hours}</td>
  </tr>`;
  const cols = ['received', 'signed_for_on_time', 'resolved', 'resolved_on_time', 'overdue_now', 'reworked',
    'rejections', 'extensions', 'response_rate', 'resolution_rate', 'satisfaction_rate', 'on_time_rate'];
  return html`<div class="table-wrap" tabindex="0"><table class="kpi-table">
    <caption class="sr-only">${caption}</caption>
    <thead><tr><th scope="col">${kind === 'department' ? t('部门', 'Department') : t('辖区', 'Area')}</th>
      ${cols.map((c) => html`<th scope="col" class="num">${metricName(c)}</th>`)}
      <th scope="col" class="num">${t('平均办理时长（小时）', 'Avg. handling (h)')}</th></tr></thead>
    <tbody>${units.map((u) => row(u, false))}${total ? row(total, true) : null}</tbody>
  </table></div>`;
}

function Trend({ state, weeks }) {
  const { data, error, loading } = state;
  const series = RATES.map((r) => ({ label: metricName(r), color: RATE_COLORS[r], values: (data ?? []).map((w) => w.total[r].value) }));
  const title = t('近 8 周趋势', 'Last 8 weeks');
  return html`<section class="kpi-section" aria-labelledby="trend-h">
    <div class="panel-head"><h2 id="trend-h">${title}</h2>
      <span class="muted small">${t('按派单时间逐周统计（周一至周日）', 'by dispatch week, Monday to Sunday')}</span></div>
    <${ErrorNote} error=${error} />
    ${loading && !data ? html`<${Loading} />` : null}
    ${data ? html`<div class="kpi-grid">
      <${RateLines} labels=${weeks.map((w) => w.label)} series=${series}
        summary=${t('近 8 周三率折线图；数值见旁边的表格', 'Three rates over the last 8 weeks; figures in the table beside it')} />
      <div class="table-wrap" tabindex="0"><table class="kpi-table">
        <caption class="sr-only">${title}</caption>
        <thead><tr><th scope="col">${t('周', 'Week')}</th><th scope="col" class="num">${metricName('received')}</th>
          ${RATES.map((r) => html`<th scope="col" class="num">${metricName(r)}</th>`)}</tr></thead>
        <tbody>${data.map((w) => html`<tr><th scope="row">${w.label}</th><td class="num">${w.total.received}</td>
          ${RATES.map((r) => rateCell(w.total[r]))}</tr>`)}</tbody>
      </table></div></div>` : null}
  </section>`;
}

function Thresholds({ data }) {
  if (!data) return html`<p>${t('尚未设置红黑榜标准，暂不评定。', 'No red/black list criteria are set: nobody is listed.')}</p>`;
  return html`<ul class="thresholds">
    <li><span class="badge red-list">${t('红榜', 'Red list')}</span>
      ${t('同时满足：', 'all of: ')}${(data.red ?? []).map(criterion).join(t('；', '; ')) || t('（无）', '(none)')}</li>
    <li><span class="badge black-list">${t('黑榜', 'Black list')}</span>
      ${t('满足任一：', 'any of: ')}${(data.black ?? []).map(criterion).join(t('；', '; ')) || t('（无）', '(none)')}</li>
    <li>${t(`受理量少于 ${data.min_received ?? 1} 件的单位不参与排名和评定。`,
      `Units with fewer than ${data.min_received ?? 1} received are neither ranked nor listed.`)}</li>
  </ul>`;
}

function Ranking({ state, unit, setUnit }) {
  const { data, error, loading } = state;
  const red = new Set((data?.red ?? []).map((x) => x.unit));
  const black = new Set((data?.black ?? []).map((x) => x.unit));
  const name = (u, n) => unitName(u, unit, n);
  const listed = (items, cls, zh, en) => html`<div class=${`card ${cls}`}>
    <h3><span class=${`badge ${cls}`}>${t(zh, en)}</span> ${t(`${items.length} 个`, `${items.length}`)}</h3>
    ${items.length ? html`<ul class="listed">${items.map((x) => html`<li><strong>${name(x.unit, x.name)}</strong>
      <span class="muted small">${x.reasons.join(t('；', '; '))}</span></li>`)}</ul>`
      : html`<p class="muted">${t('本期无', 'Nobody this period')}</p>`}
  </div>`;
  return html`<section class="kpi-section" aria-labelledby="rank-h">
    <div class="panel-head">
      <h2 id="rank-h">${t('排名与红黑榜', 'Ranking and the red/black list')}</h2>
      <div class="segmented" role="group" aria-label=${t('排名对象', 'Rank')}>
        <button type="button" aria-pressed=${unit === 'department'} onClick=${() => setUnit('department')}>${t('部门', 'Departments')}</button>
        <button type="button" aria-pressed=${unit === 'area'} onClick=${() => setUnit('area')}>${t('辖区', 'Areas')}</button>
      </div>
    </div>
    <${ErrorNote} error=${error} />
    ${loading && !data ? html`<${Loading} />` : null}
    ${data ? html`
      <div class="card"><h3>${t('评定标准', 'Criteria')}</h3><${Thresholds} data=${data.thresholds} />
        <p class="kpi-note">${t(`排名依次按 ${data.by.map(metricName).join('、')}，高者在前。`, `Ranked by ${data.by.map(metricName).join(', ')}, best first.`)}</p></div>
      <div class="kpi-lists">
        ${listed(data.red, 'red-list', '红榜', 'Red list')}
        ${listed(data.black, 'black-list', '黑榜', 'Black list')}
      </div>
      ${data.ranking.length ? html`<div class="table-wrap" tabindex="0"><table class="kpi-table">
        <caption class="sr-only">${t('排名', 'Ranking')}</caption>
        <thead><tr><th scope="col" class="num">${t('名次', 'Rank')}</th><th scope="col">${unit === 'department' ? t('部门', 'Department') : t('辖区', 'Area')}</th>
          <th scope="col" class="num">${metricName('received')}</th>
          ${RATES.map((r) => html`<th scope="col" class="num">${metricName(r)}</th>`)}
          <th scope="col">${t('榜单', 'List')}</th></tr></thead>
        <tbody>${data.ranking.map((r) => html`<tr>
          <td class="num">${r.position}</td><th scope="row">${name(r.kpi.unit, r.kpi.name)}</th>
          <td class="num">${r.kpi.received}</td>${RATES.map((m) => rateCell(r.kpi[m]))}
          <td>${red.has(r.kpi.unit) ? html`<span class="badge red-list">${t('红榜', 'Red list')}</span>` : null}
            ${black.has(r.kpi.unit) ? html`<span class="badge black-list">${t('黑榜', 'Black list')}</span>` : null}
            ${!red.has(r.kpi.unit) && !black.has(r.kpi.unit) ? html`<span class="muted">—</span>` : null}</td>
        </tr>`)}</tbody></table></div>`
        : html`<p class="empty">${t(`本期没有受理量达到 ${data.thresholds?.min_received ?? 1} 件的单位，暂不排名。`,
          `No unit received ${data.thresholds?.min_received ?? 1} or more this period: no ranking yet.`)}</p>`}` : null}
  </section>`;
}
