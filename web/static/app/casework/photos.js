// The case's photos, before (整改前) and after (整改后), fetched behind the token; a tap opens
// the picture large in a dialog.
import { html, useEffect, useRef, useState } from '../../vendor/preact-htm.mjs';
import { imageUrl } from '../api.js';
import { fmtTime, t } from '../i18n.js';
import { deptName } from '../ref.js';
import { ErrorNote, Loading } from '../ui.js';
import { paren } from './words.js';

function Thumb({ photo, label, onOpen }) {
  const [src, setSrc] = useState(null);
  const [failed, setFailed] = useState(false);
  useEffect(() => {
    let live = true;
    imageUrl('intake', photo.url).then((u) => live && setSrc(u)).catch(() => live && setFailed(true));
    return () => { live = false; };
  }, [photo.id]);
  return html`<li>
    ${src ? html`<button type="button" class="cw-thumb" onClick=${() => onOpen({ src, label, photo })}
        aria-label=${t(`放大查看：${label}`, `View larger: ${label}`)}>
        <img src=${src} alt=${label} width="96" height="96" /></button>`
    : html`<span class="cw-thumb-missing">${failed ? t('照片无法加载', 'Cannot load photo') : t('加载中…', 'Loading…')}</span>`}
    <small class="muted">${fmtTime(photo.uploaded_at)}${photo.uploaded_by_department ? html`<br />${deptName(photo.uploaded_by_department)}` : null}</small>
  </li>`;
}

export function Photos({ photos, error }) {
  const [open, setOpen] = useState(null);
  const dialog = useRef(null);
  useEffect(() => {
    const d = dialog.current;
    if (!d) return;
    if (open && !d.open) d.showModal();
    if (!open && d.open) d.close();
  }, [open]);
  const group = (kind, zh, en) => {
    const list = (photos ?? []).filter((p) => p.kind === kind);
    return html`<div class="cw-photo-group"><h3>${t(zh, en)}${paren(list.length)}</h3>
      ${list.length ? html`<ul class="thumbs">${list.map((p, i) => html`<${Thumb} key=${p.id} photo=${p}
        label=${t(`${zh}照片 ${i + 1}`, `${en} photo ${i + 1}`)} onOpen=${setOpen} />`)}</ul>`
    : html`<p class="muted small">${t('暂无', 'None')}</p>`}</div>`;
  };
  return html`<section class="card" aria-labelledby="cw-photos-h">
    <h2 id="cw-photos-h">${t('照片', 'Photos')}</h2>
    <${ErrorNote} error=${error} />
    ${photos === undefined && !error ? html`<${Loading} />` : html`<div class="cw-photos">
      ${group('before', '整改前', 'Before')}${group('after', '整改后', 'After')}</div>`}
    <dialog ref=${dialog} class="cw-viewer" aria-label=${open?.label ?? t('照片', 'Photo')}
      onClose=${() => setOpen(null)}>
      ${open ? html`<img src=${open.src} alt=${open.label} />
        <p class="small muted">${open.label} · ${fmtTime(open.photo.uploaded_at)}</p>` : null}
      <form method="dialog"><button type="submit">${t('关闭', 'Close')}</button></form>
    </dialog>
  </section>`;
}
