// History-API routing: every screen has a real address, so a link in a message (deep link)
// opens it directly; the gateway answers every console address with index.html.
const listeners = new Set();

export function navigate(to, { replace = false } = {}) {
  if (to === location.pathname + location.search) return;
  history[replace ? 'replaceState' : 'pushState']({}, '', to);
  listeners.forEach((fn) => fn());
  window.scrollTo(0, 0);
}
export const onRoute = (fn) => { listeners.add(fn); return () => listeners.delete(fn); };
window.addEventListener('popstate', () => listeners.forEach((fn) => fn()));

// Same-origin <a href> clicks stay in the page.
document.addEventListener('click', (e) => {
  const a = e.target.closest?.('a[href]');
  if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  if (a.target || a.hasAttribute('download') || a.origin !== location.origin) return;
  if (a.pathname.startsWith('/api/') || a.pathname.startsWith('/static/') || a.pathname.startsWith('/ratings/')) return;
  e.preventDefault();
  navigate(a.pathname + a.search);
});

// match('/cases/:id', '/cases/42') → {id: '42'}
export function match(pattern, path) {
  const p = pattern.split('/').filter(Boolean);
  const s = path.split('/').filter(Boolean);
  if (p.length !== s.length) return null;
  const params = {};
  for (let i = 0; i < p.length; i += 1) {
    if (p[i].startsWith(':')) params[p[i].slice(1)] = decodeURIComponent(s[i]);
    else if (p[i] !== s[i]) return null;
  }
  return params;
}

export const query = () => Object.fromEntries(new URLSearchParams(location.search));
