// The console's only door to the server: sign-in, token refresh and JSON calls through the
// gateway (/api/<service>/...). The access token lives in memory only; the refresh token is
// an HttpOnly cookie the page never sees. A token about to expire is refreshed first.
import { getLang, t } from './i18n.js';

let session = null; // {token, exp (ms), user}
let refreshing = null;
const listeners = new Set();

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

// The phone lost its signal (or the gateway is unreachable): fetch() rejects with the browser's
// own words ("Failed to fetch"), which no user should read. Not an ApiError: the server never
// answered, so a screen may tell "unconfirmed" from "refused" (report.js does).
export function networkError(cause) {
  const e = new Error(t('网络连接失败，请检查网络后重试。', 'The network failed; check the connection and try again.'));
  e.network = true;
  e.cause = cause;
  return e;
}
async function reach(url, init) {
  try { return await fetch(url, init); } catch (err) {
    if (err?.name === 'AbortError') throw err;
    throw networkError(err);
  }
}

export const currentUser = () => session?.user ?? null;
export const onSession = (fn) => { listeners.add(fn); return () => listeners.delete(fn); };
const announce = () => listeners.forEach((fn) => fn(session?.user ?? null));

function accept(body) {
  session = { token: body.access_token, exp: Date.now() + body.expires_in * 1000, user: body.user };
  announce();
  return session.user;
}

async function errorOf(res) {
  let body = null;
  try { body = await res.json(); } catch { /* not JSON */ }
  const e = body?.error;
  return new ApiError(res.status, e?.code ?? `http_${res.status}`,
    e?.message ?? t(`请求失败（${res.status}）`, `Request failed (${res.status})`), e?.details);
}

async function authCall(path, body) {
  const res = await reach(`/api/auth/${path}`, {
    method: 'POST', credentials: 'same-origin',
    headers: { 'Content-Type': 'application/json', 'Accept-Language': getLang() },
    body: body ? JSON.stringify(body) : undefined,
  });
  if (!res.ok) throw await errorOf(res);
  return res.status === 204 ? null : res.json();
}

export async function login(username, password) {
  return accept(await authCall('login', { username, password }));
}

// A new access token from the refresh cookie; null when there is no session any more.
export function refresh() {
  refreshing ??= authCall('refresh')
    .then(accept)
    .catch((err) => {
      if (err.status === 401) { session = null; announce(); return null; }
      throw err;
    })
    .finally(() => { refreshing = null; });
  return refreshing;
}

export async function logout() {
  try { await authCall('logout'); } finally { session = null; announce(); }
}

// A token good for at least `margin` ms more (refreshing when needed), or null.
export async function token(margin = 30_000) {
  if (session && session.exp - Date.now() > margin) return session.token;
  await refresh();
  return session?.token ?? null;
}

export const tokenExpiresAt = () => session?.exp ?? 0;

function url(service, path, query) {
  const u = new URL(`/api/${service}${path}`, location.origin);
  for (const [k, v] of Object.entries(query ?? {})) {
    if (v === undefined || v === null || v === '') continue;
    (Array.isArray(v) ? v : [v]).forEach((x) => u.searchParams.append(k, x));
  }
  return u.pathname + u.search;
}

// api('intake', '/cases', {method, body, query, form, headers, raw})
export async function api(service, path, { method = 'GET', body, query, form, headers = {}, raw = false } = {}) {
  const send = async () => {
    const bearer = await token();
    if (!bearer) throw new ApiError(401, 'session_expired', t('登录已失效，请重新登录', 'Signed out; sign in again'));
    const h = { Authorization: `Bearer ${bearer}`, 'Accept-Language': getLang(), ...headers };
    let payload;
    if (form) payload = form;
    else if (body !== undefined) { h['Content-Type'] = 'application/json'; payload = JSON.stringify(body); }
    return reach(url(service, path, query), { method, headers: h, body: payload, credentials: 'same-origin' });
  };
  let res = await send();
  if (res.status === 401) { // the token expired on the way: once more with a fresh one
    session = session && { ...session, exp: 0 };
    res = await send();
  }
  if (!res.ok) throw await errorOf(res);
  if (raw) return res;
  if (res.status === 204) return null;
  const type = res.headers.get('content-type') ?? '';
  return type.includes('json') ? res.json() : res.text();
}

// A file download (CSV exports) with the bearer token: saved under the server's name.
export async function download(service, path, query) {
  const res = await api(service, path, { query, raw: true });
  const blob = await res.blob();
  const disposition = res.headers.get('content-disposition') ?? '';
  const name = /filename\*?=(?:UTF-8'')?"?([^";]+)"?/i.exec(disposition)?.[1] ?? 'export';
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  a.download = decodeURIComponent(name);
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
}

// An image the API serves behind the bearer token, as an object URL for <img src>.
const imageCache = new Map();
export async function imageUrl(service, path) {
  if (!imageCache.has(path)) {
    imageCache.set(path, api(service, path, { raw: true })
      .then((res) => res.blob()).then((b) => URL.createObjectURL(b))
      .catch((e) => { imageCache.delete(path); throw e; }));
  }
  return imageCache.get(path);
}

export async function consoleConfig() {
  const res = await reach('/api/auth/config', { headers: { 'Accept-Language': getLang() } });
  return res.ok ? res.json() : { environment: 'production', demo_users: [] };
}
