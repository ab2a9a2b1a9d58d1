// The console's shell: who is signed in, the navigation for their role, the language switch,
// and the screen for the address.
import { html, render, useEffect, useState } from '../vendor/preact-htm.mjs';
import { currentUser, logout, networkError, onSession, refresh } from './api.js';
import { getLang, onLang, setLang, t } from './i18n.js';
import { loadRef } from './ref.js';
import { match, navigate, onRoute, query } from './router.js';
import { ErrorNote, Loading, Toasts } from './ui.js';

// address → screen module (loaded when first opened) and who may open it
const AREA = ['community', 'street', 'district'];
const ROUTES = [
  ['/login', 'login', null],
  ['/worker', 'worker', ['grid_worker']],
  ['/report', 'report', ['grid_worker', ...AREA]],
  ['/verify', 'verify', ['grid_worker', ...AREA]],
  ['/hotspots', 'hotspots', [...AREA, 'supervisor']],
  ['/cases', 'cases', ['grid_worker', ...AREA, 'supervisor']],
  ['/cases/:id', 'case', ['grid_worker', ...AREA, 'supervisor', 'department']],
  ['/inbox', 'inbox', ['department']],
  ['/assignments/:id', 'assignment', ['department', ...AREA, 'supervisor']],
  ['/manual-dispatch', 'manual', AREA],
  ['/requests', 'requests', ['supervisor']],
  ['/board', 'board', [...AREA, 'supervisor', 'department']],
  ['/kpi', 'kpi', [...AREA, 'supervisor', 'department']],
  ['/admin/users', 'users', ['admin']],
];

const NAV = {
  grid_worker: [['/worker', '我的网格', 'My grids'], ['/report', '上报', 'Report'], ['/verify', '待核实', 'To verify'], ['/cases', '我的案件', 'My cases']],
  community: [['/cases', '案件', 'Cases'], ['/manual-dispatch', '人工派单', 'Manual dispatch'], ['/hotspots', '未诉先办', 'Proactive'], ['/board', '指挥大屏', 'Command board'], ['/kpi', '考核', 'KPIs']],
  street: [['/cases', '案件', 'Cases'], ['/manual-dispatch', '人工派单', 'Manual dispatch'], ['/hotspots', '未诉先办', 'Proactive'], ['/board', '指挥大屏', 'Command board'], ['/kpi', '考核', 'KPIs']],
  district: [['/cases', '案件', 'Cases'], ['/manual-dispatch', '人工派单', 'Manual dispatch'], ['/hotspots', '未诉先办', 'Proactive'], ['/board', '指挥大屏', 'Command board'], ['/kpi', '考核', 'KPIs']],
  department: [['/inbox', '待办', 'Inbox'], ['/board', '超时预警', 'Late & near-late'], ['/kpi', '考核', 'KPIs']],
  supervisor: [['/board', '指挥大屏', 'Command board'], ['/requests', '延期挂账审批', 'Approvals'], ['/cases', '案件', 'Cases'], ['/kpi', '考核', 'KPIs']],
  admin: [['/admin/users', '用户管理', 'Users']],
};
const HOME = { grid_worker: '/worker', department: '/inbox', supervisor: '/board', admin: '/admin/users' };
export const homeOf = (user) => HOME[user?.role] ?? '/cases';

function resolve(path) {
  for (const [pattern, module, roles] of ROUTES) {
    const params = match(pattern, path);
    if (params) return { module, roles, params };
  }
  return null;
}

// A screen's code, fetched once; a failed fetch (no signal) is forgotten so a retry fetches it again.
const screens = new Map();
function screenModule(name) {
  if (!screens.has(name)) {
    screens.set(name, import(`./pages/${name}.js`).catch((err) => { screens.delete(name); throw networkError(err); }));
  }
  return screens.get(name);
}
// After sign-in, the role's own screens are fetched while the phone still has a signal, so
// moving between them outdoors does not need the network for the code (only for the data).
function warmScreens(user) {
  const names = new Set((NAV[user.role] ?? []).map(([href]) => resolve(href)?.module).filter(Boolean));
  if (user.role !== 'admin') names.add(user.role === 'department' ? 'assignment' : 'case');
  const later = window.requestIdleCallback ?? ((fn) => setTimeout(fn, 1500));
  later(() => names.forEach((name) => screenModule(name).catch(() => null)));
}

function Screen({ path, user }) {
  const [state, setState] = useState({ Page: null, error: null });
  const [attempt, setAttempt] = useState(0);
  const route = resolve(path);
  useEffect(() => {
    if (!route) return;
    let live = true;
    setState({ Page: null, error: null });
    Promise.all([screenModule(route.module), route.module === 'login' ? null : loadRef()])
      .then(([m]) => live && setState({ Page: m.default, error: null }))
      .catch((error) => live && setState({ Page: null, error }));
    return () => { live = false; };
  }, [route?.module, attempt]);
  if (!route) return html`<section class="page"><h1>${t('页面不存在', 'Page not found')}</h1>
    <p><a href=${homeOf(user)}>${t('返回首页', 'Back to start')}</a></p></section>`;
  if (route.roles && !route.roles.includes(user.role)) {
    return html`<section class="page"><h1>${t('无权访问', 'Not allowed')}</h1>
      <p>${t('您的角色不能使用此页面。', 'Your role cannot use this page.')}</p>
      <p><a href=${homeOf(user)}>${t('返回首页', 'Back to start')}</a></p></section>`;
  }
  if (state.error) {
    return html`<section class="page"><${ErrorNote} error=${state.error} />
      <p><button type="button" class="primary" onClick=${() => setAttempt((n) => n + 1)}>${t('重试', 'Try again')}</button></p></section>`;
  }
  if (!state.Page) return html`<section class="page"><${Loading} /></section>`;
  return html`<${state.Page} params=${route.params} query=${query()} user=${user} />`;
}

function Header({ user, path }) {
  const [open, setOpen] = useState(false);
  const items = NAV[user.role] ?? [];
  return html`<header class="top">
    <a class="brand" href=${homeOf(user)}><img src="/static/icon.svg" alt="" width="28" height="28" />
      <span>${t('吹哨', 'Whistle')}</span></a>
    <button type="button" class="menu-toggle" aria-expanded=${open} aria-controls="main-nav"
      onClick=${() => setOpen(!open)}>${t('菜单', 'Menu')}</button>
    <nav id="main-nav" class=${open ? 'open' : ''} aria-label=${t('主导航', 'Main')}>
      ${items.map(([href, zh, en]) => html`<a href=${href} onClick=${() => setOpen(false)}
        aria-current=${path === href || path.startsWith(`${href}/`) ? 'page' : null}>${t(zh, en)}</a>`)}
    </nav>
    <div class="who">
      <span class="user" title=${user.area}>${user.name}</span>
      <button type="button" class="link" lang=${getLang() === 'zh' ? 'en' : 'zh-CN'}
        onClick=${() => setLang(getLang() === 'zh' ? 'en' : 'zh')}>${getLang() === 'zh' ? 'English' : '中文'}</button>
      <button type="button" class="link" onClick=${async () => { await logout(); navigate('/login'); }}>
        ${t('退出', 'Sign out')}</button>
    </div>
  </header>`;
}

function App() {
  const [user, setUser] = useState(currentUser());
  const [path, setPath] = useState(location.pathname);
  const [ready, setReady] = useState(false);
  const [, setLangTick] = useState(0);
  useEffect(() => onSession(setUser), []);
  useEffect(() => onRoute(() => setPath(location.pathname)), []);
  useEffect(() => onLang(() => setLangTick((n) => n + 1)), []);
  useEffect(() => { refresh().catch(() => null).finally(() => setReady(true)); }, []);
  useEffect(() => { if (user) warmScreens(user); }, [user?.role]);
  useEffect(() => {
    if (!ready) return;
    if (!user && path !== '/login') navigate(`/login?next=${encodeURIComponent(location.pathname + location.search)}`, { replace: true });
    else if (user && (path === '/' || path === '/login')) navigate(query().next || homeOf(user), { replace: true });
  }, [ready, user, path]);
  if (!ready) return html`<${Loading} />`;
  const content = !user || path === '/login'
    ? html`<${Screen} key=${`login-${getLang()}`} path="/login" user=${user} />`
    : html`<${Screen} key=${`${path}-${getLang()}`} path=${path} user=${user} />`;
  return html`
    <a class="skip" href="#main">${t('跳到主要内容', 'Skip to content')}</a>
    ${user && path !== '/login' ? html`<${Header} user=${user} path=${path} />` : null}
    <main id="main" tabindex="-1">${content}</main>
    <${Toasts} />`;
}

render(html`<${App} />`, document.getElementById('app'));
