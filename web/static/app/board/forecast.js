// The resolution forecast on a board item (预计办结时间, 预计超时): a clock the forecast says
// will likely miss its deadline shows it in words — badge, probability, reason, expected
// resolution with its range — never by colour alone.
import { html } from '../../vendor/preact-htm.mjs';
import { fmtTime, t } from '../i18n.js';
import { Chip } from '../ui.js';

// On the near-overdue board by its forecast alone, before the warning light.
export const isPredicted = (it) => it.board === 'near' && !!it.predicted;

export function PredictedBadge() {
  return html`<${Chip} tone="purple">${t('预计超时', 'Likely late')}<//>`;
}

const pct = (p) => `${Math.round(p * 100)}%`;

function range(it) {
  const same = (a, b) => fmtTime(a).slice(0, 10) === fmtTime(b).slice(0, 10);
  const from = it.expected_earliest, to = it.expected_latest;
  if (!from || !to) return null;
  return `${fmtTime(from)} – ${same(from, to) ? fmtTime(to, { date: false }) : fmtTime(to)}`;
}

// The forecast's lines under an item: nothing unless it is likely late.
export function ForecastNote({ it }) {
  if (!it.breach_likely) return null;
  const reason = t(it.breach_reason, it.breach_reason_en ?? it.breach_reason);
  const span = range(it);
  return html`<div class="item-forecast">
    <p>${it.breach_probability != null
      ? html`<strong>${t(`超时概率 ${pct(it.breach_probability)}`, `${pct(it.breach_probability)} likely to be late`)}</strong>` : null}
      ${it.expected_resolution_at ? html`<span>${t('预计办结', 'Expected resolution')} ${fmtTime(it.expected_resolution_at)}</span>` : null}
      ${span ? html`<span class="muted">${t(`（可能区间 ${span}）`, `(range ${span})`)}</span>` : null}</p>
    ${reason ? html`<p class="reason">${t('原因：', 'Why: ')}${reason}</p>` : null}
  </div>`;
}
