// Departments picked by name (点名召集, 人工派单): the ones serving the case's area first,
// grouped by kind; the others (another compound's property company, another street's
// office) stay reachable for arbitration.
import { html, useState } from '../../vendor/preact-htm.mjs';
import { t } from '../i18n.js';
import { ref } from '../ref.js';
import { Field } from '../ui.js';
import { deptKindName } from './words.js';

const KIND_ORDER = ['functional', 'street_office', 'co_building', 'property', 'volunteer'];

export const servesArea = (d, path) =>
  !path || (d.areas ?? []).some((a) => path === a || path.startsWith(`${a}/`));

function grouped(areaPath, exclude) {
  const serving = new Map();
  const others = [];
  for (const d of ref.departments) {
    if (exclude.includes(d.id)) continue;
    if (servesArea(d, areaPath)) {
      if (!serving.has(d.kind)) serving.set(d.kind, { kind: d.kind, zh: d.kind_zh, items: [] });
      serving.get(d.kind).items.push(d);
    } else others.push(d);
  }
  const rank = (k) => (KIND_ORDER.indexOf(k) + 1 || 99);
  const groups = [...serving.values()].sort((a, b) => rank(a.kind) - rank(b.kind));
  return { groups, others };
}

// One department in a <select>: the lead (主办).
export function DeptSelect({ label, value, onChange, areaPath, required, emptyLabel, hint, exclude = [] }) {
  const { groups, others } = grouped(areaPath, exclude);
  return html`<${Field} label=${label} hint=${hint} required=${required}>${(id) => html`
    <select id=${id} value=${value} required=${required} onChange=${(e) => onChange(e.target.value)}>
      <option value="">${emptyLabel ?? t('请选择部门', 'Choose a department')}</option>
      ${groups.map((g) => html`<optgroup label=${deptKindName(g.kind, g.zh)}>
        ${g.items.map((d) => html`<option value=${d.id}>${d.name}</option>`)}</optgroup>`)}
      ${others.length ? html`<optgroup label=${t('其他辖区的单位', 'Serving other areas')}>
        ${others.map((d) => html`<option value=${d.id}>${d.name}</option>`)}</optgroup>` : null}
    </select>`}<//>`;
}

// Several departments as checkboxes: the co-handlers (协办).
export function DeptChecks({ legend, values, onChange, areaPath, exclude = [], hint }) {
  const [all, setAll] = useState(false);
  const { groups, others } = grouped(areaPath, exclude);
  const chosenElsewhere = others.filter((d) => values.includes(d.id));
  const toggle = (id, on) => onChange(on ? [...values, id] : values.filter((x) => x !== id));
  const box = (d) => html`<label key=${d.id}><input type="checkbox" checked=${values.includes(d.id)}
    onChange=${(e) => toggle(d.id, e.target.checked)} /> ${d.name}</label>`;
  return html`<fieldset class="cw-depts">
    <legend>${legend}</legend>
    ${hint ? html`<p class="hint small">${hint}</p>` : null}
    ${groups.map((g) => html`<div class="cw-dept-group">
      <p class="cw-dept-kind">${deptKindName(g.kind, g.zh)}</p>
      <div class="choices">${g.items.map(box)}</div></div>`)}
    ${others.length ? html`<div class="cw-dept-group">
      ${all || chosenElsewhere.length ? html`<p class="cw-dept-kind">${t('其他辖区的单位', 'Serving other areas')}</p>
        <div class="choices">${(all ? others : chosenElsewhere).map(box)}</div>` : null}
      <button type="button" class="link" aria-expanded=${all} onClick=${() => setAll(!all)}>
        ${all ? t('收起其他辖区的单位', 'Hide units serving other areas')
    : t(`显示其他辖区的单位（${others.length}）`, `Show units serving other areas (${others.length})`)}</button>
    </div>` : null}
  </fieldset>`;
}
