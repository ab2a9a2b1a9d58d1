// The seeds' counts: 随手做 / 小事不出网格 (cases the grid closed itself, per area and per grid
// worker) and 案件来源 (cases reported per source: 网格巡查, 群众上报, 12345热线, 微信群,
// 未诉先办), for the page's period, area and level.
import { html } from '../../vendor/preact-htm.mjs';
import { api } from '../api.js';
import { fmtTime, t } from '../i18n.js';
import { areaName, levelName } from '../ref.js';
import { useAsync } from '../ui.js';
import { RateCell, Section } from './common.js';

const queryOf = (p) => ({ from: p.from, to: p.to, area: p.area || undefined, level: p.level || undefined });

export function GridWorkSection({ period }) {
  const state = useAsync(() => api('tracking', '/kpi/grid-work', { query: queryOf(period) }),
    [period.from, period.to, period.area, period.level]);
  const data = state.data;
  const title = t('随手做 · 小事不出网格', 'Fixed on the spot (随手做 · 小事不出网格)');
  return html`<${Section} id="gridwork" title=${title} state=${state}
    note=${t('结案数中由网格员现场随手处置、无需派单的件数；小事不出网格率 = 随手做 / 结案数。结案后又重开的不计。',
      'Of the cases closed, how many the grid worker fixed on the spot without dispatch; the grid-level rate = on the spot / closed. A case reopened since is not counted.')}>
    ${data ? html`<div class="kpi-grid">
      <div class="table-wrap" tabindex="0"><table class="kpi-table gridwork-table">
        <caption>${t(`各${levelName(data.level)}随手做`, `On the spot per ${levelName(data.level).toLowerCase()}`)}</caption>
        <thead><tr><th scope="col">${levelName(data.level)}</th><th scope="col" class="num">${t('结案数', 'Closed')}</th>
          <th scope="col" class="num">${t('随手做', 'On the spot')}</th><th scope="col" class="num">${t('小事不出网格率', 'Grid-level rate')}</th></tr></thead>
        <tbody>${[...data.areas, data.total].map((a) => html`<tr key=${a.unit} class=${a.unit === 'total' ? 'total' : ''}>
          <th scope="row">${a.unit === 'total' ? t('合计', 'Total') : areaName(a.unit)}</th>
          <td class="num">${a.closed}</td><td class="num">${a.on_spot}</td><${RateCell} rate=${a.grid_level_rate} /></tr>`)}</tbody>
      </table></div>
      ${data.workers.length ? html`<div class="table-wrap" tabindex="0"><table class="kpi-table workers-table">
        <caption>${t('网格员随手做', 'On the spot per grid worker')}</caption>
        <thead><tr><th scope="col">${t('网格员', 'Grid worker')}</th><th scope="col" class="num">${t('随手做', 'On the spot')}</th>
          <th scope="col">${t('网格', 'Grids')}</th></tr></thead>
        <tbody>${data.workers.map((w) => html`<tr key=${w.subject}>
          <th scope="row">${w.name || w.subject}</th><td class="num">${w.on_spot}</td>
          <td>${w.grids.map((g) => areaName(g)).join('、')}</td></tr>`)}</tbody>
      </table></div>` : html`<p class="empty">${t('该周期内没有网格员随手做结案。', 'No case was fixed on the spot in this period.')}</p>`}
    </div>
    <p class="kpi-note">${t(`统计截至 ${fmtTime(data.as_of)}。`, `As of ${fmtTime(data.as_of)}.`)}</p>` : null}
  <//>`;
}

export function SourcesSection({ period }) {
  const state = useAsync(() => api('tracking', '/kpi/sources', { query: queryOf(period) }),
    [period.from, period.to, period.area, period.level]);
  const data = state.data;
  return html`<${Section} id="sources" title=${t('案件来源', 'Case sources')} state=${state}
    note=${t('该周期内上报的案件按来源统计：网格巡查、群众上报、12345热线、微信群、未诉先办。',
      'Cases reported in the period per source: grid patrol, resident report, 12345 hotline, WeChat group, proactive.')}>
    ${data ? html`<div class="table-wrap" tabindex="0"><table class="kpi-table sources-table">
      <caption>${t(`各${levelName(data.level)}案件来源`, `Sources per ${levelName(data.level).toLowerCase()}`)}</caption>
      <thead><tr><th scope="col">${levelName(data.level)}</th><th scope="col" class="num">${t('上报数', 'Reported')}</th>
        ${data.sources.map((s) => html`<th scope="col" class="num">${t(s.label_zh, s.label_en)}</th>`)}</tr></thead>
      <tbody>${[...data.areas, data.total].map((a) => html`<tr key=${a.unit} class=${a.unit === 'total' ? 'total' : ''}>
        <th scope="row">${a.unit === 'total' ? t('合计', 'Total') : areaName(a.unit)}</th>
        <td class="num">${a.reported}</td>
        ${data.sources.map((s) => html`<td class="num">${a.by_source[s.code] ?? 0}</td>`)}</tr>`)}</tbody>
    </table></div>` : null}
  <//>`;
}
