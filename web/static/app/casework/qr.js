// A QR code as inline SVG (qrcode-generator, vendored): the resident scans the rating link
// off the worker's phone or a printed slip. Drawn as one path, so it stays sharp when printed.
import { html } from '../../vendor/preact-htm.mjs';
import qrcode from '../../vendor/qrcode.mjs';

export function QrCode({ text, label, size = 200 }) {
  const qr = qrcode(0, 'M');
  qr.addData(text);
  qr.make();
  const n = qr.getModuleCount();
  const quiet = 4;
  let d = '';
  for (let r = 0; r < n; r += 1) {
    for (let c = 0; c < n; c += 1) if (qr.isDark(r, c)) d += `M${c + quiet} ${r + quiet}h1v1h-1z`;
  }
  const box = n + quiet * 2;
  return html`<svg class="cw-qr" role="img" aria-label=${label} width=${size} height=${size}
    viewBox=${`0 0 ${box} ${box}`} shape-rendering="crispEdges" xmlns="http://www.w3.org/2000/svg">
    <title>${label}</title>
    <rect width=${box} height=${box} fill="#fff" />
    <path d=${d} fill="#000" />
  </svg>`;
}
