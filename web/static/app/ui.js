// Small shared pieces of the console: data loading, forms, chips, deadlines, photos, toasts.
import { html, useCallback, useEffect, useRef, useState } from '../vendor/preact-htm.mjs';
import { fmtDeadline, fmtTime, t } from './i18n.js';

export { html };

// Load something, show it, reload it: {data, error, loading, reload, setData}.
export function useAsync(fn, deps = []) {
  const [state, setState] = useState({ data: undefined, error: null, loading: true });
  const seq = useRef(0);
  const reload = useCallback(async () => {
    const mine = ++seq.current;
    setState((s) => ({ ...s, loading: true, error: null }));
    try {
      const data = await fn();
      if (mine === seq.current) setState({ data, error: null, loading: false });
    } catch (error) {
      if (mine === seq.current) setState((s) => ({ ...s, error, loading: false }));
    }
  }, deps);
  useEffect(() => { reload(); }, [reload]);
  return { ...state, reload, setData: (data) => setState((s) => ({ ...s, data })) };
}

// A ticking clock for countdowns.
export function useNow(ms = 30_000) {
  const [now, setNow] = useState(Date.now());
  useEffect(() => { const id = setInterval(() => setNow(Date.now()), ms); return () => clearInterval(id); }, [ms]);
  return now;
}

export function Loading({ label }) {
  return html`<p class="muted" role="status" aria-live="polite">${label ?? t('加载中…', 'Loading…')}</p>`;
}

export function ErrorNote({ error }) {
  if (!error) return null;
  return html`<p class="error" role="alert">${error.message ?? String(error)}</p>`;
}

export function Empty({ children }) {
  return html`<p class="empty">${children ?? t('暂无内容', 'Nothing here')}</p>`;
}

export function Page({ title, actions, children, wide }) {
  useEffect(() => { document.title = `${title} · ${t('吹哨', 'Whistle')}`; }, [title]);
  return html`<section class=${`page${wide ? ' wide' : ''}`}>
    <header class="page-head"><h1>${title}</h1>${actions ? html`<div class="actions">${actions}</div>` : null}</header>
    ${children}
  </section>`;
}

let fieldSeq = 0;
// A labelled form control: children is a function receiving the control's id.
export function Field({ label, hint, children, required }) {
  const id = useRef(`f${++fieldSeq}`).current;
  return html`<div class="field">
    <label for=${id}>${label}${required ? html`<span class="req" aria-hidden="true"> *</span>` : null}</label>
    ${children(id)}
    ${hint ? html`<small class="hint">${hint}</small>` : null}
  </div>`;
}

// A form that runs an async action, shows its error and disables itself while busy.
export function ActionForm({ onSubmit, submitLabel, children, danger, className }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const submit = async (e) => {
    e.preventDefault();
    setBusy(true); setError(null);
    try { await onSubmit(e); } catch (err) { setError(err); } finally { setBusy(false); }
  };
  return html`<form class=${`form ${className ?? ''}`} onSubmit=${submit} novalidate>
    ${children}
    <${ErrorNote} error=${error} />
    <button type="submit" class=${danger ? 'danger' : 'primary'} disabled=${busy}>
      ${busy ? t('提交中…', 'Sending…') : submitLabel}</button>
  </form>`;
}

export function Chip({ tone = 'plain', children, title }) {
  return html`<span class=${`chip ${tone}`} title=${title}>${children}</span>`;
}

// A deadline with its light: 红灯 late, 黄灯 close (under `warnSeconds`), plain otherwise.
export function Deadline({ due, overdue, warnSeconds = 3600, now = Date.now() }) {
  if (!due) return html`<span class="muted">—</span>`;
  const left = (new Date(due).getTime() - now) / 1000;
  const tone = overdue || left < 0 ? 'red' : left < warnSeconds ? 'yellow' : 'plain';
  return html`<span class=${`deadline ${tone}`} title=${fmtTime(due)}>
    <span class="dot" aria-hidden="true"></span>${fmtDeadline(due, now)}
    <span class="muted small"> (${fmtTime(due)})</span></span>`;
}

// The file input of a photo field: the browser's own control ("Choose Files / No file chosen",
// in the browser's language, a small target) is hidden; a large button in the console's
// language opens the camera or the album, and says how many photos are chosen.
export function PhotoPick({ id, count, max, disabled, onFiles, camera = true }) {
  return html`<div class="photo-pick">
    <input id=${id} class="photo-file" type="file" accept="image/jpeg,image/png,image/webp"
      capture=${camera ? 'environment' : undefined} multiple disabled=${disabled || count >= max}
      onChange=${(e) => { onFiles([...e.target.files]); e.target.value = ''; }} />
    <label for=${id} class="photo-button">
      <svg class="photo-icon" viewBox="0 0 24 24" aria-hidden="true" fill="none" stroke="currentColor"
        stroke-width="2"><path d="M4 7h3l2-3h6l2 3h3v13H4z" /><circle cx="12" cy="13" r="4" /></svg>${t('拍照或选择照片', 'Take or choose photos')}</label>
    <span class="photo-count muted small" aria-live="polite">${count
      ? t(`已选 ${count}/${max} 张`, `${count} of ${max} chosen`) : t('未选择照片', 'No photo chosen')}</span>
  </div>`;
}

// Photos from the camera or the album, previewed before they are sent.
export function PhotoInput({ label, files, onChange, max = 9 }) {
  const urls = files.map((f) => URL.createObjectURL(f));
  useEffect(() => () => urls.forEach((u) => URL.revokeObjectURL(u)), [files]);
  return html`<${Field} label=${label}>${(id) => html`
    <${PhotoPick} id=${id} count=${files.length} max=${max}
      onFiles=${(picked) => onChange([...files, ...picked].slice(0, max))} />
    ${files.length ? html`<ul class="thumbs">${files.map((f, i) => html`<li>
      <img src=${urls[i]} alt=${t(`待上传照片${i + 1}`, `Photo ${i + 1} to upload`)} />
      <button type="button" class="link" onClick=${() => onChange(files.filter((_, j) => j !== i))}>
        ${t('移除', 'Remove')}</button></li>`)}</ul>` : null}`}<//>`;
}

// Toasts (操作提示), announced to screen readers.
const toastListeners = new Set();
export function toast(message, tone = 'ok') { toastListeners.forEach((fn) => fn({ message, tone, at: Date.now() })); }
export function Toasts() {
  const [items, setItems] = useState([]);
  useEffect(() => {
    const add = (item) => {
      setItems((xs) => [...xs, item]);
      setTimeout(() => setItems((xs) => xs.filter((x) => x !== item)), 5000);
    };
    toastListeners.add(add);
    return () => toastListeners.delete(add);
  }, []);
  return html`<div class="toasts" role="status" aria-live="polite">
    ${items.map((x) => html`<p class=${`toast ${x.tone}`}>${x.message}</p>`)}</div>`;
}

// A table that becomes cards on a phone (CSS), with a caption for screen readers.
export function Table({ caption, columns, rows, rowKey, empty }) {
  if (!rows?.length) return html`<${Empty}>${empty}<//>`;
  return html`<div class="table-wrap" tabindex="0"><table>
    <caption class="sr-only">${caption}</caption>
    <thead><tr>${columns.map((c) => html`<th scope="col">${c.label}</th>`)}</tr></thead>
    <tbody>${rows.map((r) => html`<tr key=${rowKey(r)}>
      ${columns.map((c) => html`<td data-label=${c.label}>${c.render(r)}</td>`)}</tr>`)}</tbody>
  </table></div>`;
}

// Loads a classic script (Leaflet, Chart.js) once, when a screen needs it.
const scripts = new Map();
export function loadScript(src) {
  if (!scripts.has(src)) {
    scripts.set(src, new Promise((resolve, reject) => {
      const s = document.createElement('script');
      s.src = src; s.onload = resolve; s.onerror = () => reject(new Error(`cannot load ${src}`));
      document.head.append(s);
    }));
  }
  return scripts.get(src);
}
export function loadStyle(href) {
  if (!document.querySelector(`link[href="${href}"]`)) {
    const l = document.createElement('link'); l.rel = 'stylesheet'; l.href = href; document.head.append(l);
  }
}
export async function loadLeaflet() {
  loadStyle('/static/vendor/leaflet/leaflet.css');
  await loadScript('/static/vendor/leaflet/leaflet.js');
  return window.L;
}
export async function loadChart() {
  await loadScript('/static/vendor/chart.umd.min.js');
  return window.Chart;
}
