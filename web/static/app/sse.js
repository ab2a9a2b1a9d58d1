// Server-Sent Events over fetch, so the bearer token travels in the Authorization header
// (a browser EventSource cannot send one). It resumes from the last id it saw
// (Last-Event-ID), refreshes the token before reconnecting, and backs off on errors. The
// gateway ends a stream when its token expires; we simply reconnect with a fresh one.
import { token } from './api.js';
import { getLang } from './i18n.js';

export function openStream(path, { onEvent, onState, query } = {}) {
  let lastId = null;
  let stopped = false;
  let controller = null;
  let delay = 1000;

  const build = () => {
    const u = new URL(path, location.origin);
    for (const [k, v] of Object.entries(query ?? {})) if (v) u.searchParams.set(k, v);
    return u.pathname + u.search;
  };

  async function once() {
    const bearer = await token(60_000);
    if (!bearer) { onState?.('signed_out'); stopped = true; return; }
    controller = new AbortController();
    const headers = { Authorization: `Bearer ${bearer}`, Accept: 'text/event-stream', 'Accept-Language': getLang() };
    if (lastId) headers['Last-Event-ID'] = lastId;
    const res = await fetch(build(), { headers, signal: controller.signal });
    if (!res.ok || !res.body) throw new Error(`stream ${res.status}`);
    onState?.('open');
    delay = 1000;
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    let event = { type: 'message', data: [], id: null };
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let nl;
      while ((nl = buffer.search(/\r?\n/)) >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + (buffer[nl] === '\r' ? 2 : 1));
        if (line === '') {
          if (event.id !== null) lastId = event.id;
          if (event.data.length) {
            const text = event.data.join('\n');
            let data = text;
            try { data = JSON.parse(text); } catch { /* plain text */ }
            onEvent?.({ type: event.type, id: event.id, data });
          }
          event = { type: 'message', data: [], id: null };
        } else if (!line.startsWith(':')) {
          const i = line.indexOf(':');
          const field = i < 0 ? line : line.slice(0, i);
          const val = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '');
          if (field === 'event') event.type = val;
          else if (field === 'data') event.data.push(val);
          else if (field === 'id') event.id = val;
        }
      }
    }
  }

  (async () => {
    while (!stopped) {
      try { await once(); } catch (err) {
        if (stopped) break;
        onState?.('error');
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(delay * 2, 30_000);
        continue;
      }
      if (!stopped) { onState?.('reconnecting'); await new Promise((r) => setTimeout(r, 300)); }
    }
  })();

  return () => { stopped = true; controller?.abort(); };
}
