// Chart.js (vendored) wrapped for the KPI page. A chart is a picture for the eye; every chart
// here has a table beside it with the same figures for screen readers and for copying.
import { html, useEffect, useRef, useState } from '../../vendor/preact-htm.mjs';
import { t } from '../i18n.js';
import { ErrorNote, loadChart } from '../ui.js';

export const RATE_COLORS = {
  response_rate: '#1a73e8', resolution_rate: '#188038', satisfaction_rate: '#e8710a',
};

// A chart in its box: Chart.js loaded on first use, the chart redrawn when `data` (its
// labels and series) changes and destroyed with the box; `summary` names it for screen readers.
function ChartBox({ summary, data, config, height }) {
  const canvas = useRef(null);
  const chart = useRef(null);
  const [error, setError] = useState(null);
  const key = JSON.stringify(data);
  useEffect(() => {
    let live = true;
    loadChart().then((Chart) => {
      if (!live || !canvas.current) return;
      chart.current?.destroy();
      chart.current = new Chart(canvas.current, config());
    }).catch((e) => live && setError(e));
    return () => { live = false; chart.current?.destroy(); chart.current = null; };
  }, [key]);
  return html`<div class="chart-box" style=${height ? { height: `${height}px` } : null}>
    <canvas ref=${canvas} role="img" aria-label=${summary}>${summary}</canvas>
    <${ErrorNote} error=${error} />
  </div>`;
}

const pct = (v) => (v == null ? null : Math.round(v * 1000) / 10);

// Rates (0–1 or null) as bars per unit: one dataset per rate.
export function RateBars({ labels, series, summary, horizontal = true }) {
  const config = () => ({
    type: 'bar',
    data: {
      labels,
      datasets: series.map((s) => ({
        label: s.label, data: s.values.map(pct), backgroundColor: s.color, borderRadius: 3,
        maxBarThickness: 22,
      })),
    },
    options: {
      indexAxis: horizontal ? 'y' : 'x', responsive: true, maintainAspectRatio: false, animation: false,
      scales: {
        [horizontal ? 'x' : 'y']: { min: 0, max: 100, ticks: { callback: (v) => `${v}%` } },
        [horizontal ? 'y' : 'x']: { ticks: { autoSkip: false } },
      },
      plugins: {
        legend: { position: 'top' },
        tooltip: { callbacks: { label: (c) => `${c.dataset.label}: ${c.raw == null ? t('无数据', 'no data') : `${c.raw}%`}` } },
      },
    },
  });
  const height = horizontal ? Math.max(220, 70 + labels.length * series.length * 16) : 320;
  return html`<${ChartBox} summary=${summary} data=${[labels, series]} config=${config} height=${height} />`;
}

// Rates over time, one line per rate.
export function RateLines({ labels, series, summary }) {
  const config = () => ({
    type: 'line',
    data: {
      labels,
      datasets: series.map((s) => ({
        label: s.label, data: s.values.map(pct), borderColor: s.color, backgroundColor: s.color,
        spanGaps: true, tension: 0.2, pointRadius: 4,
      })),
    },
    options: {
      responsive: true, maintainAspectRatio: false, animation: false,
      scales: { y: { min: 0, max: 100, ticks: { callback: (v) => `${v}%` } } },
      plugins: {
        legend: { position: 'top' },
        tooltip: { callbacks: { label: (c) => `${c.dataset.label}: ${c.raw == null ? t('无数据', 'no data') : `${c.raw}%`}` } },
      },
    },
  });
  return html`<${ChartBox} summary=${summary} data=${[labels, series]} config=${config} />`;
}

// Counts (integers) as grouped bars per label, one dataset per series; an `outline` series
// is drawn light inside its edge, so two series of one colour differ by more than hue.
export function CountBars({ labels, series, summary }) {
  const config = () => ({
    type: 'bar',
    data: {
      labels,
      datasets: series.map((s) => ({
        label: s.label, data: s.values, borderColor: s.color, borderWidth: 2, borderRadius: 3,
        backgroundColor: s.outline ? `${s.color}33` : s.color, maxBarThickness: 26,
      })),
    },
    options: {
      responsive: true, maintainAspectRatio: false, animation: false,
      scales: { y: { beginAtZero: true, ticks: { precision: 0 } } },
      plugins: { legend: { position: 'top' } },
    },
  });
  return html`<${ChartBox} summary=${summary} data=${[labels, series]} config=${config} />`;
}
