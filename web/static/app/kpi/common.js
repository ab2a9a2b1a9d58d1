// Small pieces shared by the KPI page's newer sections (回测, 考核诚信, 随手做, 案件来源):
// Beijing dates, the areas a user may choose, a rate cell and a section frame.
import { html } from '../../vendor/preact-htm.mjs';
import { t } from '../i18n.js';
import { ref } from '../ref.js';
import { ErrorNote, Loading } from '../ui.js';

const DAY = new Intl.DateTimeFormat('en-CA', { timeZone: 'Asia/Shanghai', year: 'numeric', month: '2-digit', day: '2-digit' });
export const today = () => DAY.format(new Date());
export const addDays = (s, n) => {
  const d = new Date(`${s}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + n);
  return d.toISOString().slice(0, 10);
};

// Streets and communities inside the user's area, in path order (for the area choosers).
export function areasWithin(user) {
  return (ref.features?.features ?? []).map((f) => f.properties)
    .filter((p) => (p.level === 'street' || p.level === 'community') && p.path.startsWith(`${user.area}/`))
    .sort((a, b) => a.path.localeCompare(b.path));
}

export function RateCell({ rate }) {
  return html`<td class="num">${rate.label}${rate.denominator
    ? html`<span class="muted small"> (${rate.numerator}/${rate.denominator})</span>` : null}</td>`;
}

// A section of the KPI page with its heading; while loading, a status line; a refusal (403)
// or any other error is shown inside the section and leaves the rest of the page alone.
export function Section({ id, title, note, state, actions, children }) {
  const { data, error, loading } = state ?? {};
  return html`<section class="kpi-section insights" aria-labelledby=${`${id}-h`}>
    <div class="panel-head"><h2 id=${`${id}-h`}>${title}</h2>${actions ?? null}</div>
    ${note ? html`<p class="kpi-note">${note}</p>` : null}
    ${state ? html`<${ErrorNote} error=${error} />` : null}
    ${state && loading && !data ? html`<${Loading} />` : null}
    ${children}
  </section>`;
}

// Who may read which section (the server checks again; these only spare a 403).
const AREA = ['community', 'street', 'district'];
export const MAY = {
  backtest: [...AREA, 'supervisor'],
  integrity: ['street', 'district', 'supervisor'],
  seeds: [...AREA, 'supervisor'],
};
export const may = (user, what) => MAY[what].includes(user.role);

export const sum = (o) => Object.values(o ?? {}).reduce((a, b) => a + b, 0);
export const periodLabel = (from, to) => t(`${from} 至 ${to}`, `${from} to ${to}`);
