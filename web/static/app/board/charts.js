// Chart.js (vendored) wrapped for the KPI page. A chart is a picture for the eye; every chart
// here has a table beside it with the same figures for screen readers and for copying.
import { html, useEffect, useRef, useState } from '../../vendor/preact-htm.mjs';
import { t } from '../i18n.js';
import { ErrorNote, loadChart } from '../ui.js';

export const RATE_COLORS = {
  response_rate: '#1a73e8', resolution_rate: '#188038', satisfaction_rate: '#e8710a',
};

function useChart(canvas, config, deps) {
  const [error, setError] = useState(null);
  const chart = useRef(null);
  useEffect(() => {
    let live = true;
    loadChart().then((Chart) => {
      if (!live || !canvas.current) return;
      chart.current?.destroy();
      chart.current = new Chart(canvas.current, config());
    }).catch((e) => live && setError(e));
    return () => { live = false; chart.current?.destroy(); chart.current = null; };
  }, deps);
  return error;
}

const pct = (v) => (v == null ? null : Math.round(v * 1000) / 10);

// Rates (0–1 or null) as bars per unit: one dataset per rate.
export function RateBars({ labels, series, summary, horizontal = true }) {
  const canvas = useRef(null);
  const key = JSON.stringify([labels, series]);
  const error = useChart(canvas, () => ({
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
  }), [key]);
  const height = horizontal ? Math.max(220, 70 + labels.length * series.length * 16) : 320;
  return html`<div class="chart-box" style=${{ height: `${height}px` }}>
    <canvas ref=${canvas} role="img" aria-label=${summary}>${summary}</canvas>
    <${ErrorNote} error=${error} />
  </div>`;
}

// Rates over time, one line per rate.
export function RateLines({ labels, series, summary }) {
  const canvas = useRef(null);
  const key = JSON.stringify([labels, series]);
  const error = useChart(canvas, () => ({
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
  }), [key]);
  return html`<div class="chart-box">
    <canvas ref=${canvas} role="img" aria-label=${summary}>${summary}</canvas>
    <${ErrorNote} error=${error} />
  </div>`;
}
