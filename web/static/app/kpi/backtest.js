// SLA 回测 (backtest): choose a stored policy version, a period of dispatch and optionally an
// area and a category; tracking replays the period's assignments under that version and
// answers, per week, clock and department, how many clocks it would have warned, made late
// and escalated — beside what the live policies did. Read-only on the server.
import { html, useState } from '../../vendor/preact-htm.mjs';
import { api } from '../api.js';
import { CountBars } from '../board/charts.js';
import { fmtTime, t } from '../i18n.js';
import { areaName, categoryName, clockName, deptName, levelName, ref } from '../ref.js';
import { Chip, Field, useAsync } from '../ui.js';
import { Section, addDays, areasWithin, periodLabel, sum, today } from './common.js';

const LEVELS = ['community', 'street', 'district'];
const escalated = (tally) => sum(tally.escalated);

export default function BacktestSection({ user }) {
  const versions = useAsync(() => api('tracking', '/sla/policy-versions'), []);
  const items = versions.data?.items ?? [];
  const [form, setForm] = useState({ version: '', from: addDays(today(), -29), to: today(), area: '', category: '' });
  const [run, setRun] = useState({ busy: false, error: null, data: null, asked: null });
  const version = form.version || String(items.at(-1)?.version ?? '');
  const set = (k) => (e) => setForm({ ...form, [k]: e.target.value });

  const submit = async (e) => {
    e.preventDefault();
    if (!version) return;
    const body = { version: Number(version), from: form.from, to: form.to };
    if (form.area) body.area = form.area;
    if (form.category) body.category = form.category;
    setRun({ ...run, busy: true, error: null });
    try {
      const data = await api('tracking', '/sla/backtest', { method: 'POST', body });
      setRun({ busy: false, error: null, data, asked: body });
    } catch (error) {
      setRun({ busy: false, error, data: null, asked: null });
    }
  };

  const groups = ref.categories.filter((c) => !c.parent_code);
  return html`<${Section} id="backtest" title=${t('SLA 回测', 'SLA backtest')} state=${versions}
    note=${t('用所选时限策略版本重算该期间派出的案件：会有多少预警、超时和逐级上报，与实际运行的结果对照。只读，不改动任何数据。',
      'Replays the assignments dispatched in the period under the chosen policy version: how many would have been warned, late and escalated, next to what really happened. Read-only.')}>
    <form class="card kpi-period backtest-form" onSubmit=${submit} aria-label=${t('回测条件', 'Backtest settings')} novalidate>
      <${Field} label=${t('策略版本', 'Policy version')}>${(id) => html`
        <select id=${id} value=${version} onChange=${set('version')}>
          ${items.map((v) => html`<option value=${String(v.version)}>${versionText(v)}</option>`)}
        </select>`}<//>
      <${Field} label=${t('派单开始日期', 'Dispatched from')}>${(id) => html`
        <input id=${id} type="date" value=${form.from} onInput=${set('from')} />`}<//>
      <${Field} label=${t('派单结束日期（含当天）', 'Dispatched to (inclusive)')}>${(id) => html`
        <input id=${id} type="date" value=${form.to} onInput=${set('to')} />`}<//>
      <${Field} label=${t('回测辖区', 'Area')}>${(id) => html`
        <select id=${id} value=${form.area} onChange=${set('area')}>
          <option value="">${t(`全部（${areaName(user.area)}）`, `All (${areaName(user.area)})`)}</option>
          ${areasWithin(user).map((p) => html`<option value=${p.path}>${p.level === 'community' ? '\u3000' : ''}${p.name}</option>`)}
        </select>`}<//>
      <${Field} label=${t('案件类别', 'Category')}>${(id) => html`
        <select id=${id} value=${form.category} onChange=${set('category')}>
          <option value="">${t('全部类别', 'All categories')}</option>
          ${groups.map((g) => html`<option value=${g.code}>${g.name}</option>
            ${ref.categories.filter((c) => c.parent_code === g.code).map((c) => html`<option value=${c.code}>\u3000${c.name}</option>`)}`)}
        </select>`}<//>
      <button type="submit" class="primary" disabled=${run.busy || !version}>
        ${run.busy ? t('回测中…', 'Running…') : t('运行回测', 'Run backtest')}</button>
    </form>
    ${run.error ? html`<p class="error" role="alert">${t('无法回测：', 'Cannot backtest: ')}${run.error.message}</p>` : null}
    ${run.data ? html`<${Result} data=${run.data} asked=${run.asked} version=${items.find((v) => v.version === run.data.version)} />` : null}
  <//>`;
}

function versionText(v) {
  const note = v.policy?.note ? ` · ${v.policy.note}` : '';
  return t(`版本 ${v.version}（${fmtTime(v.effective_from)} 起生效）${note}`,
    `Version ${v.version} (in force from ${fmtTime(v.effective_from)})${note}`);
}

function Result({ data, asked, version }) {
  const weeks = data.weeks.map((w) => t(`${w.week.slice(5).replace('-', '/')} 周`, `week of ${w.week.slice(5).replace('-', '/')}`));
  const of = (side, f) => data.weeks.map((w) => f(w[side]));
  const series = [
    { label: t('超时（回测）', 'Late (backtest)'), color: '#b3261e', values: of('backtest', (x) => x.late) },
    { label: t('超时（实际）', 'Late (live)'), color: '#b3261e', outline: true, values: of('live', (x) => x.late) },
    { label: t('预警（回测）', 'Warned (backtest)'), color: '#b06d00', values: of('backtest', (x) => x.warned) },
    { label: t('预警（实际）', 'Warned (live)'), color: '#b06d00', outline: true, values: of('live', (x) => x.warned) },
    { label: t('逐级上报（回测）', 'Escalated (backtest)'), color: '#5b3cc4', values: of('backtest', escalated) },
    { label: t('逐级上报（实际）', 'Escalated (live)'), color: '#5b3cc4', outline: true, values: of('live', escalated) },
  ];
  const lateDiff = data.weeks.reduce((n, w) => n + w.backtest.late - w.live.late, 0);
  const kind = data.draft ? t('策略草案', 'Draft policy') : t('策略版本', 'Policy version');
  const scope = [asked.area ? areaName(asked.area) : null, asked.category ? categoryName(asked.category) : null].filter(Boolean).join(' · ');
  return html`<div class="backtest-result" aria-live="polite">
    <p class="backtest-label">
      <${Chip} tone=${data.draft ? 'yellow' : 'blue'}>${kind} ${data.version}<//>
      ${version ? html` <span class="muted small">${versionText(version)}</span>` : null}
      <span> · ${periodLabel(asked.from, asked.to)}${scope ? ` · ${scope}` : ''}</span>
      <span> · ${t(`共 ${data.assignments} 次派单`, `${data.assignments} assignments`)}</span>
    </p>
    ${data.assignments ? html`
      <p class="backtest-verdict">${lateDiff === 0 ? t('按此版本，超时数与实际相同。', 'Under this version, as many late as really were.')
        : lateDiff > 0 ? t(`按此版本，超时比实际多 ${lateDiff} 项。`, `Under this version, ${lateDiff} more late than really were.`)
          : t(`按此版本，超时比实际少 ${-lateDiff} 项。`, `Under this version, ${-lateDiff} fewer late than really were.`)}</p>
      <${CountBars} labels=${weeks} series=${series}
        summary=${t(`回测与实际对比柱状图，按派单周，共 ${weeks.length} 周；数值见下表`,
          `Backtest against live, bars per week of dispatch, ${weeks.length} weeks; figures in the tables below`)} />
      <${PairTable} caption=${t('回测：按周', 'Backtest by week')} head=${t('派单周（周一）', 'Week (Monday)')}
        rows=${data.weeks.map((w) => ({ key: w.week, name: w.week, ...w }))} />
      <${PairTable} caption=${t('回测：按时限', 'Backtest by clock')} head=${t('时限', 'Clock')}
        rows=${data.clocks.map((c) => ({ key: c.clock, name: clockName(c.clock), ...c }))} />
      <${PairTable} caption=${t('回测：按部门', 'Backtest by department')} head=${t('部门', 'Department')}
        rows=${data.departments.map((d) => ({ key: d.department_id, name: d.department_name || deptName(d.department_id), ...d }))} />`
      : html`<p class="empty">${t('该期间没有派单，无可回测的案件。', 'Nothing was dispatched in this period: nothing to backtest.')}</p>`}
  </div>`;
}

function EscCell({ tally }) {
  const n = escalated(tally);
  const parts = LEVELS.filter((l) => tally.escalated[l]).map((l) => `${levelName(l)}${tally.escalated[l]}`);
  return html`<td class="num">${n}${parts.length ? html`<span class="muted small"> (${parts.join(' · ')})</span>` : null}</td>`;
}

function PairTable({ caption, head, rows }) {
  const cols = [
    [t('派单数', 'Assignments')], [t('计时（回测）', 'Clocks (backtest)')], [t('计时（实际）', 'Clocks (live)')],
    [t('预警（回测）', 'Warned (backtest)')], [t('预警（实际）', 'Warned (live)')],
    [t('超时（回测）', 'Late (backtest)')], [t('超时（实际）', 'Late (live)')],
    [t('逐级上报（回测）', 'Escalated (backtest)')], [t('逐级上报（实际）', 'Escalated (live)')],
  ];
  return html`<div class="table-wrap" tabindex="0"><table class="kpi-table backtest-table">
    <caption>${caption}</caption>
    <thead><tr><th scope="col">${head}</th>${cols.map(([c]) => html`<th scope="col" class="num">${c}</th>`)}</tr></thead>
    <tbody>${rows.map((r) => html`<tr key=${r.key}>
      <th scope="row">${r.name}</th><td class="num">${r.assignments}</td>
      <td class="num">${r.backtest.clocks}</td><td class="num">${r.live.clocks}</td>
      <td class="num">${r.backtest.warned}</td><td class="num">${r.live.warned}</td>
      <td class=${`num${r.backtest.late > r.live.late ? ' worse' : r.backtest.late < r.live.late ? ' better' : ''}`}>${r.backtest.late}</td>
      <td class="num">${r.live.late}</td>
      <${EscCell} tally=${r.backtest} /><${EscCell} tally=${r.live} />
    </tr>`)}</tbody>
  </table></div>`;
}
