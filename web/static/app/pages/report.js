// 上报问题 (网格发现) — a grid worker reports what he found on his phone: where (his grid, a tap
// on the grid map or the phone's position), what (大类 → 小类), how urgent, a description and
// photos. A case he fixed himself is closed at once (随手做，小事不出网格) with after-photos.
// What he typed is kept (also across a reload) until the report is in; a retry after a network
// error sends the same Idempotency-Key, so it never makes a second case.
import { html, useEffect, useMemo, useRef, useState } from '../../vendor/preact-htm.mjs';
import { api, ApiError } from '../api.js';
import { fmtTime, t } from '../i18n.js';
import { areaName, caseStatusName, placeName, PRIORITIES, ref } from '../ref.js';
import { ErrorNote, Field, Page, PhotoInput, toast } from '../ui.js';
import { GridMap, neighbourGrids, reportableGrids, StatusChip } from './worker.js';
import { COORD_SYSTEMS, coordName, parseCoords, sourceName, STAFF_SOURCES } from '../casework/sources.js';

const LIMITS = { description: 2000, address: 500, note: 1000, photoBytes: 5 * 1024 * 1024, photos: 9 };

// --- small helpers ---------------------------------------------------------------------------

// A fresh Idempotency-Key; crypto.randomUUID needs a secure context, getRandomValues does not.
function newKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
}

const draftKey = (user) => `whistle.report-draft.${user.username}`;

function blankDraft(grids, keep = {}) {
  return {
    key: newKey(),
    grid: keep.grid ?? (grids.length === 1 ? grids[0].properties.code : ''),
    major: '', category: '', priority: 'normal', description: '', address: '',
    point: null, fixOnSpot: false, fixNote: '',
    source: keep.source ?? 'grid_patrol', coordText: '', coordSystem: keep.coordSystem ?? '',
  };
}

function loadDraft(user, grids) {
  try {
    const saved = JSON.parse(localStorage.getItem(draftKey(user)) ?? 'null');
    if (saved && typeof saved === 'object' && saved.key) {
      const codes = new Set(grids.map((f) => f.properties.code));
      return { ...blankDraft(grids), ...saved, grid: codes.has(saved.grid) ? saved.grid : '' };
    }
  } catch { /* a broken draft is dropped */ }
  return blankDraft(grids);
}

const isNetworkError = (e) => !(e instanceof ApiError);
const explain = (e) => (isNetworkError(e)
  ? new Error(t('网络连接失败，请检查网络后重试。', 'The network failed; check the connection and try again.'))
  : e);

// A phone photo over the server's limit is scaled down in the browser (JPEG, at most 2560 px).
async function fitPhoto(file) {
  if (file.size <= LIMITS.photoBytes || typeof createImageBitmap !== 'function') return file;
  try {
    const bitmap = await createImageBitmap(file, { imageOrientation: 'from-image' });
    const scale = Math.min(1, 2560 / Math.max(bitmap.width, bitmap.height));
    const canvas = document.createElement('canvas');
    canvas.width = Math.round(bitmap.width * scale);
    canvas.height = Math.round(bitmap.height * scale);
    canvas.getContext('2d').drawImage(bitmap, 0, 0, canvas.width, canvas.height);
    const blob = await new Promise((resolve) => canvas.toBlob(resolve, 'image/jpeg', 0.85));
    if (blob && blob.size < file.size) {
      return new File([blob], `${(file.name || 'photo').replace(/\.[^.]*$/, '')}.jpg`, { type: 'image/jpeg' });
    }
  } catch { /* the server explains the limit */ }
  return file;
}

async function sendPhoto(caseId, kind, file) {
  const form = new FormData();
  const fitted = await fitPhoto(file);
  form.append('file', fitted, fitted.name || 'photo.jpg');
  return api('intake', `/cases/${caseId}/photos`, { method: 'POST', query: { kind }, form });
}

// Photos of one kind going up one after another; a failed one stays with its reason and can
// be sent again or removed — never silently lost.
let uploadSeq = 0;
function useUploads(kind) {
  const [items, setItems] = useState([]);
  const cur = useRef([]);
  const put = (next) => { cur.current = next; setItems(next); };
  const patch = (key, p) => put(cur.current.map((x) => (x.key === key ? { ...x, ...p } : x)));
  const add = (files) => put([...cur.current, ...files.map((file) => ({ key: ++uploadSeq, file, status: 'waiting', error: null }))]);
  const remove = (key) => put(cur.current.filter((x) => x.key !== key));
  // Sends the waiting ones (or the one named); true when every photo is up.
  const send = async (caseId, only) => {
    const todo = cur.current.filter((x) => (only ? x.key === only : x.status === 'waiting'));
    for (const item of todo) {
      patch(item.key, { status: 'uploading', error: null });
      try {
        patch(item.key, { status: 'done', photo: await sendPhoto(caseId, kind, item.file) });
      } catch (e) {
        patch(item.key, { status: 'failed', error: explain(e) });
      }
    }
    return cur.current.every((x) => x.status === 'done');
  };
  return { items, add, remove, send, cur };
}

function Thumb({ file, alt }) {
  const url = useMemo(() => URL.createObjectURL(file), [file]);
  useEffect(() => () => URL.revokeObjectURL(url), [url]);
  return html`<img src=${url} alt=${alt} />`;
}

const UPLOAD_STATE = {
  waiting: ['等待上传', 'Waiting'], uploading: ['上传中…', 'Uploading…'],
  done: ['已上传', 'Uploaded'], failed: ['上传失败', 'Upload failed'],
};

function UploadList({ items, label, onRetry, onRemove }) {
  if (!items.length) return null;
  return html`<ul class="upload-list" aria-label=${label}>${items.map((it, i) => html`
    <li key=${it.key} class=${`upload ${it.status}`}>
      <${Thumb} file=${it.file} alt=${t(`${label}${i + 1}`, `${label} ${i + 1}`)} />
      <div class="upload-body">
        <span class="upload-state"><span class="sym" aria-hidden="true">${{ done: '✓', failed: '!', uploading: '↑', waiting: '…' }[it.status]}</span>
          ${t(...UPLOAD_STATE[it.status])}</span>
        ${it.status === 'failed' ? html`<p class="error small" role="alert">${it.error?.message}</p>
          <div class="upload-actions">
            <button type="button" onClick=${() => onRetry(it.key)}>${t('重试', 'Retry')}</button>
            <button type="button" class="link" onClick=${() => onRemove(it.key)}>${t('移除', 'Remove')}</button>
          </div>` : null}
      </div>
    </li>`)}</ul>`;
}

// --- after the report: case number, duplicates, photos, 随手做 --------------------------------

function Outcome({ report, beforeFiles, fix, onNew, user }) {
  const [current, setCurrent] = useState(report);
  const before = useUploads('before');
  const after = useUploads('after');
  const [fixOpen, setFixOpen] = useState(!!fix);
  const [note, setNote] = useState(fix?.note ?? '');
  const [noteError, setNoteError] = useState(null);
  const [fixState, setFixState] = useState(fix ? 'waiting' : 'idle'); // idle|waiting|running|done|failed
  const [fixError, setFixError] = useState(null);
  const [afterFiles, setAfterFiles] = useState(fix?.files ?? []);
  const headRef = useRef(null);
  const id = report.id;

  const closeOnSpot = async (text) => {
    setFixState('running'); setFixError(null);
    try {
      setCurrent(await api('intake', `/cases/${id}/fix-on-spot`, { method: 'POST', body: { note: text } }));
    } catch (e) {
      // The answer may have been lost on the way while the case was closed: read it back.
      const now = await api('intake', `/cases/${id}`).catch(() => null);
      if (now?.status !== 'closed') { setFixState('failed'); setFixError(explain(e)); return false; }
      setCurrent(now);
    }
    setFixState('done');
    toast(t('已随手做结案', 'Closed as fixed on the spot'));
    return true;
  };

  const startFix = async () => {
    const text = note.trim();
    if (!text) { setNoteError(t('请填写处理说明', 'Say what you did')); return; }
    if (text.length > LIMITS.note) { setNoteError(t(`处理说明最多${LIMITS.note}字`, `At most ${LIMITS.note} characters`)); return; }
    setNoteError(null);
    if (before.cur.current.some((x) => x.status !== 'done')) { setFixState('waiting'); return; }
    if (await closeOnSpot(text)) {
      after.add(afterFiles);
      setAfterFiles([]);
      await after.send(id);
    }
  };

  useEffect(() => {
    headRef.current?.focus();
    before.add(beforeFiles);
    before.send(id).then((allUp) => { if (fix && allUp) startFix(); });
  }, []);

  const retryBefore = async (key) => {
    const allUp = await before.send(id, key);
    if (allUp && fixState === 'waiting' && fix) startFix();
  };
  // Closing or reloading the page while photos are not all up would lose them: ask first.
  const unsent = [...before.items, ...after.items].some((x) => x.status !== 'done');
  useEffect(() => {
    if (!unsent) return undefined;
    const hold = (e) => { e.preventDefault(); e.returnValue = ''; };
    window.addEventListener('beforeunload', hold);
    return () => window.removeEventListener('beforeunload', hold);
  }, [unsent]);
  const beforeLeft = before.items.some((x) => x.status !== 'done');
  const closed = current.status === 'closed';
  const canFix = ['reported', 'reopened'].includes(current.status) && fixState !== 'done';

  return html`<div class="outcome">
    <section class="card outcome-head" aria-labelledby="outcome-h">
      <h2 id="outcome-h" tabindex="-1" ref=${headRef}><span aria-hidden="true">✓ </span>${t('已上报', 'Reported')}</h2>
      <p class="case-no-big">${t('案件编号', 'Case number')} <strong>${current.case_no}</strong></p>
      <p><${StatusChip} status=${current.status} /> <span class="muted small">${fmtTime(current.reported_at)}</span></p>
      <p class="small">${placeName(current.area_path)}${current.location?.address ? ` · ${current.location.address}` : ''}</p>
      <p class="small">${t('案件来源：', 'Source: ')}${sourceName(current.source)}</p>
      <p><a href=${`/cases/${id}`}>${t('查看案件详情', 'Open the case')} →</a></p>
    </section>

    ${report.possible_duplicates?.length ? html`<section class="card dupes" aria-labelledby="dupes-h">
      <h2 id="dupes-h">${t('可能重复的案件', 'Possible duplicates')}</h2>
      <p class="muted small">${t('附近近期已有同类未结案件，社区核实后可合并。', 'Open cases of the same kind were reported nearby recently; the community may merge them.')}</p>
      <ul class="list">${report.possible_duplicates.map((d) => html`<li key=${d.id}>
        <a href=${`/cases/${d.id}`}>${d.case_no}</a>
        <span class="muted small"> · ${d.distance_m != null ? t(`相距约${Math.round(d.distance_m)}米`, `about ${Math.round(d.distance_m)} m away`) : areaName(d.grid_code)} · ${fmtTime(d.reported_at)}</span>
        <p class="case-desc">${d.description}</p></li>`)}</ul>
    </section>` : null}

    ${before.items.length ? html`<section class="card" aria-labelledby="before-h">
      <h2 id="before-h">${t('现场照片（整改前）', 'Photos (before)')}</h2>
      <${UploadList} items=${before.items} label=${t('整改前照片', 'Before photo')}
        onRetry=${retryBefore} onRemove=${before.remove} />
    </section>` : null}

    ${canFix || fixState === 'done' || closed ? html`<section class="card fix" aria-labelledby="fix-h">
      <h2 id="fix-h">${t('随手做（小事不出网格）', 'Fixed on the spot')}</h2>
      ${fixState === 'done' || (closed && !canFix) ? html`
        <p class="ok-note" role="status"><span aria-hidden="true">✓ </span>${closed
          ? t('已随手做结案。', 'Closed as fixed on the spot.') : caseStatusName(current.status)}</p>
        <${UploadList} items=${after.items} label=${t('整改后照片', 'After photo')}
          onRetry=${(key) => after.send(id, key)} onRemove=${after.remove} />
        <${PhotoInput} label=${t('补充整改后照片', 'Add after photos')} files=${[]}
          onChange=${(files) => { after.add(files); after.send(id); }} />`
      : !fixOpen ? html`
        <p class="muted small">${t('问题已在现场解决？直接结案并上传整改后照片。', 'Solved it on the spot? Close it now and add after photos.')}</p>
        <button type="button" onClick=${() => setFixOpen(true)}>${t('随手做结案', 'Close as fixed on the spot')}</button>`
      : html`
        <${Field} label=${t('处理说明', 'What you did')} required hint=${noteError
          ? html`<span class="field-error">${noteError}</span>` : t(`最多${LIMITS.note}字`, `Up to ${LIMITS.note} characters`)}>${(fid) => html`
          <textarea id=${fid} value=${note} maxlength=${LIMITS.note} aria-invalid=${noteError ? 'true' : null}
            onInput=${(e) => setNote(e.target.value)}></textarea>`}<//>
        <${PhotoInput} label=${t('整改后照片', 'After photos')} files=${afterFiles} onChange=${setAfterFiles} max=${LIMITS.photos} />
        ${fixState === 'waiting' && beforeLeft ? html`<p class="warn small" role="status">${t(
          '整改前照片还没有全部上传。结案后不能再补传整改前照片：请重试或移除失败的照片，再结案。',
          'Not every before photo is up yet, and none can be added once the case is closed: retry or remove the failed ones first.')}</p>` : null}
        <${ErrorNote} error=${fixError} />
        <button type="button" class="primary" disabled=${fixState === 'running' || beforeLeft}
          onClick=${startFix}>${fixState === 'running' ? t('提交中…', 'Sending…') : t('随手做结案', 'Close as fixed on the spot')}</button>`}
    </section>` : null}

    <div class="outcome-actions">
      <button type="button" class="primary" onClick=${onNew}>${t('再报一件', 'Report another')}</button>
      ${user.role === 'grid_worker'
        ? html`<a class="button" href="/worker">${t('返回我的网格', 'Back to my grids')}</a>`
        : html`<a class="button" href="/cases">${t('返回案件列表', 'Back to the cases')}</a>`}
    </div>
  </div>`;
}

// --- the form -----------------------------------------------------------------------------

const GEO_ERRORS = {
  1: ['定位被拒绝：请在浏览器或系统设置中允许本网站使用位置，或在地图上点选问题位置。',
    'Location was refused: allow this site to use your location in the browser settings, or tap the place on the map.'],
  2: ['当前无法获取位置（GPS 信号弱或定位服务关闭），请在地图上点选问题位置。',
    'Your position is not available (weak GPS or location off); tap the place on the map.'],
  3: ['定位超时，请重试或在地图上点选问题位置。', 'Locating took too long; try again or tap the place on the map.'],
};

export default function Report({ user }) {
  const grids = useMemo(() => reportableGrids(user), [user]);
  const context = useMemo(() => (user.role === 'grid_worker' ? neighbourGrids(grids) : []), [grids]);
  const gridCodes = useMemo(() => new Set(grids.map((f) => f.properties.code)), [grids]);
  const [draft, setDraft] = useState(() => loadDraft(user, grids));
  const [before, setBefore] = useState([]);
  const [after, setAfter] = useState([]);
  const [errors, setErrors] = useState({});
  const [formError, setFormError] = useState(null);
  const [busy, setBusy] = useState(false);
  const [locating, setLocating] = useState(false);
  const [pointNote, setPointNote] = useState(null); // {tone: ok|warn|error, text}
  const [fitKey, setFitKey] = useState(0);
  const [done, setDone] = useState(null);
  const locateSeq = useRef(0);
  const formRef = useRef(null);

  useEffect(() => {
    if (!done) localStorage.setItem(draftKey(user), JSON.stringify(draft));
  }, [draft, done]);

  const set = (k, v) => {
    setDraft((d) => ({ ...d, [k]: v }));
    setErrors((e) => (e[k] ? { ...e, [k]: null } : e));
  };
  const majors = ref.categories.filter((c) => !c.parent_code);
  const minors = ref.categories.filter((c) => c.parent_code && c.parent_code === draft.major);
  const gridName = (code) => grids.find((f) => f.properties.code === code)?.properties.name ?? areaName(code);

  // grids grouped by community for the picker
  const groups = useMemo(() => {
    const by = new Map();
    for (const f of grids) {
      const parent = f.properties.path.split('/').slice(0, -1).join('/');
      if (!by.has(parent)) by.set(parent, []);
      by.get(parent).push(f);
    }
    return [...by.entries()];
  }, [grids]);

  const pickGrid = (code) => {
    if (draft.point?.grid && draft.point.grid !== code) {
      setDraft((d) => ({ ...d, grid: code, point: null }));
      setPointNote({ tone: 'warn', text: t('已清除所选位置：它不在这个网格内。', 'The chosen point was cleared: it is not in this grid.') });
    } else setDraft((d) => ({ ...d, grid: code }));
    setErrors((e) => ({ ...e, grid: null }));
    setFitKey((k) => k + 1);
  };

  // A point (tapped or from the phone) → the grid holding it, which must be one of mine.
  const placePoint = async (p, source, coord = 'wgs84') => {
    const mine = ++locateSeq.current;
    const lat = Number(p.lat.toFixed(6));
    const lon = Number(p.lon.toFixed(6));
    const point = { lat, lon, accuracy: p.accuracy ?? null, source, coord, grid: null };
    setDraft((d) => ({ ...d, point }));
    setPointNote({ tone: 'ok', text: t('正在确定所在网格…', 'Finding the grid…') });
    setErrors((e) => ({ ...e, grid: null }));
    try {
      const g = await api('intake', '/areas/locate', { query: { lat, lon, coord_system: coord } });
      if (mine !== locateSeq.current) return;
      if (!gridCodes.has(g.code)) {
        setDraft((d) => ({ ...d, point: null }));
        setPointNote({ tone: 'error', text: t(`该位置属于${placeName(g.path)}，不在您可上报的网格内。`, `That place is in ${placeName(g.path)}, not a grid you report for.`) });
        return;
      }
      setDraft((d) => ({ ...d, grid: g.code, point: { ...point, grid: g.code, micro: g.micro_grid?.name ?? null } }));
      setPointNote({ tone: 'ok', text: t(`位置在${g.name}${g.micro_grid ? ` · ${g.micro_grid.name}` : ''}`, `The place is in ${g.name}${g.micro_grid ? ` · ${g.micro_grid.name}` : ''}`) });
    } catch (e) {
      if (mine !== locateSeq.current) return;
      if (e.code === 'point_outside_grids' && source !== 'gps') {
        setDraft((d) => ({ ...d, point: null }));
        setPointNote({ tone: 'error', text: `${e.message}${source === 'typed'
          ? t('。请核对坐标和坐标系。', '. Check the position and its coordinate system.') : t('。请在网格范围内点选。', '. Tap inside a grid.')}` });
      } else if (e.code === 'point_outside_grids') {
        setPointNote({ tone: 'warn', text: t('当前位置不在任何网格内（可能是定位偏差）：请在上方选择网格，位置将一并提交。', 'Your position is not inside any grid (GPS may be off): choose the grid above; the position is sent with it.') });
      } else {
        setPointNote({ tone: 'warn', text: `${explain(e).message} ${t('请选择网格，位置将一并提交。', 'Choose the grid; the position is sent with it.')}` });
      }
    }
  };

  const useGps = () => {
    if (!('geolocation' in navigator)) {
      setPointNote({ tone: 'error', text: t('此浏览器不支持定位，请在地图上点选问题位置。', 'This browser cannot locate you; tap the place on the map.') });
      return;
    }
    if (!window.isSecureContext) {
      setPointNote({ tone: 'error', text: t('定位需要安全连接（HTTPS），请在地图上点选问题位置。', 'Locating needs a secure (HTTPS) connection; tap the place on the map.') });
      return;
    }
    setLocating(true);
    setPointNote({ tone: 'ok', text: t('正在获取当前位置…', 'Getting your position…') });
    navigator.geolocation.getCurrentPosition(
      (pos) => {
        setLocating(false);
        placePoint({ lat: pos.coords.latitude, lon: pos.coords.longitude, accuracy: pos.coords.accuracy }, 'gps');
        setFitKey((k) => k + 1);
      },
      (err) => {
        setLocating(false);
        setPointNote({ tone: 'error', text: t(...(GEO_ERRORS[err.code] ?? GEO_ERRORS[2])) });
      },
      { enableHighAccuracy: true, timeout: 15_000, maximumAge: 30_000 },
    );
  };

  // A position typed or pasted from a map app, in the coordinate system the worker names.
  const useTyped = () => {
    const at = parseCoords(draft.coordText);
    const bad = {};
    if (!at) bad.coordText = t('请输入坐标，如 37.8866, 112.5362（纬度、经度，顺序不限）', 'Type a position, e.g. 37.8866, 112.5362');
    if (!draft.coordSystem) bad.coordSystem = t('请选择坐标来自哪种地图', 'Choose which map the position comes from');
    setErrors((e) => ({ ...e, ...bad, coordText: bad.coordText ?? null, coordSystem: bad.coordSystem ?? null }));
    if (Object.keys(bad).length) return;
    placePoint(at, 'typed', draft.coordSystem);
    setFitKey((k) => k + 1);
  };

  const clearPoint = () => { locateSeq.current += 1; set('point', null); setPointNote(null); };

  const validate = () => {
    const e = {};
    if (!draft.point?.grid && !draft.grid) e.grid = t('请选择网格，或在地图上点选位置', 'Choose the grid or tap the place on the map');
    if (!draft.major) e.major = t('请选择问题大类', 'Choose the kind of problem');
    else if (minors.length && !draft.category) e.category = t('请选择问题小类', 'Choose the exact problem');
    if (!draft.description.trim()) e.description = t('请描述发现的问题', 'Describe the problem');
    if (draft.fixOnSpot && !draft.fixNote.trim()) e.fixNote = t('请填写处理说明', 'Say what you did');
    return e;
  };

  const submit = async (ev) => {
    ev.preventDefault();
    const e = validate();
    setErrors(e);
    setFormError(null);
    if (Object.keys(e).length) {
      setFormError(new Error(t('请补全标注的内容后再提交。', 'Complete the marked fields, then send.')));
      setTimeout(() => formRef.current?.querySelector('[aria-invalid="true"]')?.focus(), 0);
      return;
    }
    const p = draft.point;
    const location = {};
    if (p) { location.lat = p.lat; location.lon = p.lon; }
    const coordSystem = p?.coord ?? 'wgs84';
    if (draft.address.trim()) location.address = draft.address.trim();
    const body = {
      category: minors.length ? draft.category : draft.major,
      priority: draft.priority,
      description: draft.description.trim(),
      location,
      source: draft.source,
    };
    if (p && coordSystem !== 'wgs84') body.coord_system = coordSystem;
    if (!p?.grid) body.grid_code = draft.grid; // a located point places the report itself
    setBusy(true);
    try {
      const report = await api('intake', '/cases', { method: 'POST', body, headers: { 'Idempotency-Key': draft.key } });
      localStorage.removeItem(draftKey(user));
      setDone({
        report, beforeFiles: before,
        fix: draft.fixOnSpot ? { note: draft.fixNote.trim(), files: after } : null,
      });
      window.scrollTo(0, 0);
    } catch (err) {
      if (err.code === 'idempotency_key_reused') {
        // An earlier send of this form went through with other content: the next send is new.
        set('key', newKey());
        setFormError(new Error(t(
          '此前的一次提交可能已经上报成功（内容与现在不同），请先到“我的网格”查看；如确需再报，请再次提交。',
          'An earlier send of this form may already have been reported (with other content): check My grids first; send again to report anyway.')));
      } else if (isNetworkError(err)) {
        setFormError(new Error(t('网络连接失败，未能确认是否上报成功。内容已保留，可直接重试，不会重复上报。',
          'The network failed and the report is unconfirmed. Nothing was lost: send again; it will not be reported twice.')));
      } else setFormError(err);
    } finally { setBusy(false); }
  };

  const startOver = () => {
    const grid = draft.grid;
    setDone(null); setBefore([]); setAfter([]); setErrors({}); setFormError(null); setPointNote(null);
    setDraft(blankDraft(grids, { grid: gridCodes.has(grid) ? grid : undefined, source: draft.source, coordSystem: draft.coordSystem }));
    window.scrollTo(0, 0);
  };

  if (!grids.length) {
    return html`<${Page} title=${t('上报问题', 'Report a problem')}>
      <p class="empty">${t('您没有可上报的网格，请联系系统管理员分配网格。', 'You have no grid to report for; ask the administrator to assign one.')}</p><//>`;
  }
  if (done) {
    return html`<${Page} title=${t('上报问题', 'Report a problem')}>
      <div class="wk"><${Outcome} key=${done.report.id} ...${done} onNew=${startOver} user=${user} /></div><//>`;
  }

  const errHint = (k, hint) => (errors[k] ? html`<span class="field-error">${errors[k]}</span>` : hint);
  const inv = (k) => (errors[k] ? 'true' : null);
  const p = draft.point;
  const selectedGrid = p?.grid ?? draft.grid;

  return html`<${Page} title=${t('上报问题', 'Report a problem')}>
    <div class="wk"><form class="form report-form" onSubmit=${submit} novalidate ref=${formRef}>
      <fieldset class="report-where">
        <legend>${t('问题位置', 'Where')}</legend>
        <${Field} label=${t('网格', 'Grid')} required hint=${errHint('grid')}>${(id) => html`
          <select id=${id} value=${selectedGrid} aria-invalid=${inv('grid')} onChange=${(e) => pickGrid(e.target.value)}>
            ${grids.length !== 1 ? html`<option value="">${t('请选择网格', 'Choose a grid')}</option>` : null}
            ${groups.length > 1 ? groups.map(([parent, fs]) => html`<optgroup label=${placeName(parent)}>
              ${fs.map((f) => html`<option value=${f.properties.code}>${f.properties.name}</option>`)}</optgroup>`)
              : grids.map((f) => html`<option value=${f.properties.code}>${f.properties.name}</option>`)}
          </select>`}<//>
        <div class="locate-row">
          <button type="button" class="locate-btn" onClick=${useGps} disabled=${locating}>
            <span aria-hidden="true">◎ </span>${locating ? t('定位中…', 'Locating…') : t('使用当前位置', 'Use my position')}</button>
          ${p ? html`<button type="button" class="link" onClick=${clearPoint}>${t('清除位置', 'Clear the point')}</button>` : null}
        </div>
        <p class="muted small" id="map-help">${t('或在地图上点选问题所在位置：', 'Or tap the place on the map:')}</p>
        <details class="pv-typed" open=${!!draft.coordText || p?.source === 'typed'}>
          <summary>${t('输入地图软件中的坐标', 'Type a position from a map app')}</summary>
          <${Field} label=${t('坐标', 'Position')} hint=${errHint('coordText', t('从高德、百度、腾讯地图等复制，纬度和经度顺序不限', 'Copied from Amap, Baidu, Tencent…; latitude and longitude in either order'))}>${(id) => html`
            <input id=${id} value=${draft.coordText} inputmode="decimal" autocomplete="off" aria-invalid=${inv('coordText')}
              placeholder="37.8866, 112.5362" onInput=${(e) => set('coordText', e.target.value)} />`}<//>
          <fieldset class=${`pv-coord-systems${errors.coordSystem ? ' invalid' : ''}`}>
            <legend>${t('坐标系（坐标来自哪种地图）', 'Coordinate system (which map it comes from)')}</legend>
            <div class="choices">${COORD_SYSTEMS.map(([k, zh, en]) => html`<label>
              <input type="radio" name="coord-system" value=${k} checked=${draft.coordSystem === k}
                onChange=${() => set('coordSystem', k)} />${t(zh, en)}</label>`)}</div>
            ${errors.coordSystem ? html`<small class="field-error">${errors.coordSystem}</small>` : null}
          </fieldset>
          <button type="button" onClick=${useTyped}>${t('按坐标定位', 'Locate this position')}</button>
        </details>
        <${GridMap} grids=${grids} context=${context} selected=${selectedGrid} point=${p && p.coord !== 'wgs84' && p.coord ? null : p} fitKey=${fitKey} tall
          onPick=${(ll) => placePoint({ lat: ll.lat, lon: ll.lng }, 'map')}
          label=${t('网格地图：点选问题位置', 'Grid map: tap the place of the problem')} />
        <div aria-live="polite" class="point-status">
          ${p ? html`<p class="small point-coords">${t('已选位置', 'Chosen point')}：${p.lat.toFixed(5)}, ${p.lon.toFixed(5)}${p.accuracy ? t(`（精度约${Math.round(p.accuracy)}米）`, ` (±${Math.round(p.accuracy)} m)`) : ''}
            · ${p.source === 'gps' ? t('当前位置', 'my position') : p.source === 'typed'
              ? t(`输入的坐标（${coordName(p.coord)}）`, `typed (${coordName(p.coord)})`) : t('地图点选', 'tapped on the map')}</p>` : null}
          ${pointNote ? html`<p class=${`small note-${pointNote.tone}`}>${pointNote.text}</p>` : null}
          ${p?.accuracy > 100 ? html`<p class="small note-warn">${t('定位精度较低，请核对网格或在地图上点选。', 'The position is rough; check the grid or tap the map.')}</p>` : null}
        </div>
        <${Field} label=${t('详细地址', 'Address')} hint=${t('如：桃园小区5号楼2单元', 'e.g. building 5, entrance 2')}>${(id) => html`
          <input id=${id} value=${draft.address} maxlength=${LIMITS.address} autocomplete="off"
            onInput=${(e) => set('address', e.target.value)} />`}<//>
      </fieldset>

      <${Field} label=${t('案件来源', 'Source')} hint=${t('默认网格巡查；群众当面反映、12345热线或微信群里看到的，请选对应来源', 'Grid patrol unless a resident, the 12345 hotline or a WeChat group told you')}>${(id) => html`
        <select id=${id} value=${draft.source} onChange=${(e) => set('source', e.target.value)}>
          ${STAFF_SOURCES.map(([k, zh, en]) => html`<option value=${k}>${t(zh, en)}</option>`)}
        </select>`}<//>

      <fieldset>
        <legend>${t('问题类型', 'What')}</legend>
        <${Field} label=${t('大类', 'Kind')} required hint=${errHint('major')}>${(id) => html`
          <select id=${id} value=${draft.major} aria-invalid=${inv('major')}
            onChange=${(e) => { setDraft((d) => ({ ...d, major: e.target.value, category: '' })); setErrors((x) => ({ ...x, major: null, category: null })); }}>
            <option value="">${t('请选择大类', 'Choose the kind')}</option>
            ${majors.map((c) => html`<option value=${c.code}>${c.name}</option>`)}
          </select>`}<//>
        ${draft.major && minors.length ? html`<${Field} label=${t('小类', 'Problem')} required hint=${errHint('category')}>${(id) => html`
          <select id=${id} value=${draft.category} aria-invalid=${inv('category')} onChange=${(e) => set('category', e.target.value)}>
            <option value="">${t('请选择小类', 'Choose the problem')}</option>
            ${minors.map((c) => html`<option value=${c.code}>${c.name}</option>`)}
          </select>`}<//>` : null}
      </fieldset>

      <fieldset>
        <legend>${t('紧急程度', 'Urgency')}</legend>
        <div class="choices priority-choices">
          ${PRIORITIES.map(([k, zh, en]) => html`<label class=${`prio ${k}`}>
            <input type="radio" name="priority" value=${k} checked=${draft.priority === k}
              onChange=${() => set('priority', k)} />${t(zh, en)}</label>`)}
        </div>
      </fieldset>

      <${Field} label=${t('问题描述', 'Description')} required hint=${errHint('description',
        t(`${draft.description.length}/${LIMITS.description}字`, `${draft.description.length}/${LIMITS.description}`))}>${(id) => html`
        <textarea id=${id} value=${draft.description} maxlength=${LIMITS.description} rows="4" aria-invalid=${inv('description')}
          placeholder=${t('发现了什么问题？如：单元门口堆放装修垃圾，堵塞通道', 'What did you find?')}
          onInput=${(e) => set('description', e.target.value)}></textarea>`}<//>

      <${PhotoInput} label=${t('现场照片（整改前，最多9张）', 'Photos (before, up to 9)')} files=${before} onChange=${setBefore} max=${LIMITS.photos} />

      <div class="fix-toggle">
        <label class="check"><input type="checkbox" checked=${draft.fixOnSpot}
          onChange=${(e) => set('fixOnSpot', e.target.checked)} />
          ${t('已现场解决（随手做）', 'Already fixed on the spot')}</label>
        <small class="hint">${t('小事不出网格：上报后直接结案。', 'Small things stay in the grid: closed right after the report.')}</small>
      </div>
      ${draft.fixOnSpot ? html`<div class="fix-fields">
        <${Field} label=${t('处理说明', 'What you did')} required hint=${errHint('fixNote')}>${(id) => html`
          <textarea id=${id} value=${draft.fixNote} maxlength=${LIMITS.note} rows="3" aria-invalid=${inv('fixNote')}
            onInput=${(e) => set('fixNote', e.target.value)}></textarea>`}<//>
        <${PhotoInput} label=${t('整改后照片', 'After photos')} files=${after} onChange=${setAfter} max=${LIMITS.photos} />
      </div>` : null}

      <${ErrorNote} error=${formError} />
      <button type="submit" class="primary big" disabled=${busy}>
        ${busy ? t('提交中…', 'Sending…') : draft.fixOnSpot ? t('上报并随手做结案', 'Report and close') : t('提交上报', 'Send the report')}</button>
    </form></div>
  <//>`;
}
