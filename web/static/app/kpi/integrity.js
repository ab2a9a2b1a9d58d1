// 考核诚信 (integrity findings): tracking's 督办 checks for KPI gaming — premature closes,
// dispatch churn, last-minute sign-for and progress, proxy ratings — per department, each
// with its evidence cases (links to the case). Street, district and supervisors only.
import { html } from '../../vendor/preact-htm.mjs';
import { api } from '../api.js';
import { fmtTime, t } from '../i18n.js';
import { areaName, deptName } from '../ref.js';
import { Chip, useAsync } from '../ui.js';
import { RateCell, Section } from './common.js';

export const KINDS = ['premature_close', 'dispatch_churn', 'last_minute_sign_for', 'last_minute_progress', 'proxy_rating'];
const EVIDENCE = 10; // evidence cases listed per finding (the count says how many in all)
const pct = (x) => `${Math.round(x * 100)}%`;

// Each check in one plain sentence, with the thresholds the server used.
function explain(kind, th) {
  switch (kind) {
    case 'premature_close': return t(`部门办结后 ${th.rework_days} 天内，案件又被返工或重开：可能为赶时限而草草办结。`,
      `A resolution came back as rework or a reopening within ${th.rework_days} days: perhaps closed early to look on time.`);
    case 'dispatch_churn': return t(`案件在部门之间被退单、转办来回推（交回原部门，或转手 ${th.min_hops} 次以上）：可能在推诿。`,
      `A case was bounced between departments by rejections and transfers (back to a department, or ${th.min_hops}+ hand-offs): perhaps passing the buck.`);
    case 'last_minute_sign_for': return t(`拖到签收时限的最后 ${pct(th.last_share)} 才签收：只为不超时而报到。`,
      `Signed for only in the last ${pct(th.last_share)} of the sign-for window: reporting in just to avoid being late.`);
    case 'last_minute_progress': return t(`签收后一直没有进展，拖到办结时限的最后 ${pct(th.last_share)} 才处置。`,
      `Signed for, then no progress until the last ${pct(th.last_share)} of the resolution window.`);
    case 'proxy_rating': return t(`评价由网格员代为录入而不是群众本人提交；至少 ${th.min_ratings} 条评价且代评超过 ${pct(th.proxy_share)} 时提示。`,
      `Ratings entered by the grid worker instead of the resident; flagged above ${pct(th.proxy_share)} with at least ${th.min_ratings} ratings.`);
    default: return '';
  }
}

export const kindLabel = (f) => t(f.label_zh, f.label_en);

export default function IntegritySection({ period }) {
  const state = useAsync(() => api('tracking', '/kpi/integrity', {
    query: { from: period.from, to: period.to, area: period.area || undefined, evidence_limit: EVIDENCE },
  }), [period.from, period.to, period.area]);
  const data = state.data;
  const flagged = (data?.departments ?? []).filter((d) => d.flagged > 0);
  const labelOf = (kind) => {
    const f = data?.departments.find((d) => d.findings[kind])?.findings[kind];
    return f ? kindLabel(f) : kind;
  };
  return html`<${Section} id="integrity" title=${t('考核诚信', 'Integrity findings')} state=${state}
    note=${t('督办检查：从事件记录中找出可能“做指标”的迹象，逐项列出证据案件，供核实；不是处分结论。',
      'Supervision checks: signs of gaming the KPIs found in the event record, each with its evidence cases to verify — not a verdict.')}>
    ${data ? html`
      <dl class="detectors card">${KINDS.map((k) => html`<div key=${k}>
        <dt>${labelOf(k)}</dt><dd>${explain(k, data.thresholds)}</dd></div>`)}</dl>
      ${data.departments.length ? html`<${Summary} departments=${data.departments} labelOf=${labelOf} />`
        : html`<p class="empty">${t('该周期内没有可检查的派单。', 'Nothing to check in this period.')}</p>`}
      ${flagged.map((d) => html`<${DepartmentFindings} key=${d.department_id} d=${d} />`)}
      ${data.churn_pairs.length ? html`<${ChurnPairs} pairs=${data.churn_pairs} />` : null}
      ${data.communities.some((c) => c.proxy_rating.flagged) ? html`<${Communities} items=${data.communities} />` : null}
      <p class="kpi-note">${t(`统计截至 ${fmtTime(data.as_of)}。`, `As of ${fmtTime(data.as_of)}.`)}</p>` : null}
  <//>`;
}

const deptOf = (d) => d.name || deptName(d.department_id);

function Summary({ departments, labelOf }) {
  return html`<div class="table-wrap" tabindex="0"><table class="kpi-table integrity-table">
    <caption>${t('各部门检查结果（发现数/检查数）', 'Per department (flagged / examined)')}</caption>
    <thead><tr><th scope="col">${t('部门', 'Department')}</th>
      <th scope="col" class="num">${t('发现合计', 'Flagged')}</th>
      ${KINDS.map((k) => html`<th scope="col" class="num">${labelOf(k)}</th>`)}</tr></thead>
    <tbody>${departments.map((d) => html`<tr key=${d.department_id}>
      <th scope="row">${deptOf(d)}</th>
      <td class="num">${d.flagged ? html`<strong>${d.flagged}</strong>` : '0'}</td>
      ${KINDS.map((k) => (d.findings[k] ? html`<${FindingCell} f=${d.findings[k]} />` : html`<td class="num">—</td>`))}
    </tr>`)}</tbody>
  </table></div>`;
}

function FindingCell({ f }) {
  return html`<td class=${`num${f.alert ? ' alert' : ''}`}>${f.flagged}/${f.examined}
    ${f.alert ? html` <span class="flag">${t('需关注', 'look')}</span>` : null}</td>`;
}

function EvidenceList({ evidence }) {
  const more = evidence.total - evidence.items.length;
  return html`<ul class="evidence">${evidence.items.map((e) => html`<li key=${e.case_id}>
      <a href=${`/cases/${e.case_id}`}>${e.case_no}</a>
      ${e.department_id ? html` <span class="muted small">${deptName(e.department_id)}</span>` : null}
      <span> ${t(e.summary_zh, e.summary_en)}</span></li>`)}
    ${more > 0 ? html`<li class="muted">${t(`另有 ${more} 件未列出`, `${more} more not listed`)}</li>` : null}</ul>`;
}

function DepartmentFindings({ d }) {
  const shown = Object.values(d.findings).filter((f) => f.flagged > 0);
  return html`<article class="card integrity-dept" aria-labelledby=${`int-${d.department_id}`}>
    <h3 id=${`int-${d.department_id}`}>${deptOf(d)} <${Chip} tone="red">${t(`发现 ${d.flagged} 项`, `${d.flagged} flagged`)}<//></h3>
    ${shown.map((f) => html`<section key=${f.kind} class="finding">
      <h4>${kindLabel(f)} <span class="muted small">${f.flagged}/${f.examined}（${f.rate.label}）</span>
        ${f.all_five_stars ? html` <${Chip} tone="yellow">${t('代评全为5星', 'all proxy ratings 5 stars')}<//>` : null}</h4>
      <${EvidenceList} evidence=${f.evidence} />
    </section>`)}
  </article>`;
}

function ChurnPairs({ pairs }) {
  return html`<article class="card" aria-labelledby="churn-h">
    <h3 id="churn-h">${t('推诿空转的部门组合', 'Departments handing cases back and forth')}</h3>
    ${pairs.map((p) => html`<section class="finding" key=${p.departments.join('-')}>
      <h4>${p.departments.map((id, i) => p.names[i] || deptName(id)).join(' ⇄ ')}
        <span class="muted small"> ${t(`${p.cases} 件，转手 ${p.hops} 次`, `${p.cases} cases, ${p.hops} hand-offs`)}</span></h4>
      <${EvidenceList} evidence=${p.evidence} />
    </section>`)}
  </article>`;
}

function Communities({ items }) {
  return html`<div class="table-wrap" tabindex="0"><table class="kpi-table">
    <caption>${t('各社区网格员代评', 'Proxy ratings per community')}</caption>
    <thead><tr><th scope="col">${t('社区', 'Community')}</th><th scope="col" class="num">${t('代评/评价', 'Proxy / rated')}</th>
      <th scope="col" class="num">${t('代评率', 'Share')}</th><th scope="col">${t('证据案件', 'Evidence')}</th></tr></thead>
    <tbody>${items.filter((c) => c.proxy_rating.flagged).map((c) => html`<tr key=${c.area_path}>
      <th scope="row">${areaName(c.area_path)}</th>
      <td class="num">${c.proxy_rating.flagged}/${c.proxy_rating.examined}</td><${RateCell} rate=${c.proxy_rating.rate} />
      <td><${EvidenceList} evidence=${c.proxy_rating.evidence} /></td></tr>`)}</tbody>
  </table></div>`;
}
