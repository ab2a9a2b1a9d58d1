// 指挥大屏 — the supervisors' command board: the jurisdiction map with late (超时, 红灯) and
// near-late (临期, 黄灯) clocks — and those the forecast says will likely be late before their
// warning (预计超时, board/forecast.js) —, the two boards as lists, counters, filters, and the boards'
// live stream (every change refreshes lists, counters and map without reloading the page).
// Community, street and district see their subtree; department staff their own items (the
// server scopes both).
import { html, useEffect, useMemo, useRef, useState } from '../../vendor/preact-htm.mjs';
import { api } from '../api.js';
import { ForecastNote, isPredicted, PredictedBadge } from '../board/forecast.js';
import { BoardMap } from '../board/geo.js';
import {
  beijingDay, changeName, changeTone, escalationText, lateSeconds, lateText, urgeText,
} from '../board/items.js';
import { fmtDuration, fmtTime, t } from '../i18n.js';
import { openStream } from '../sse.js';
import {
  areaName, categoryName, categoryPath, clockName, deptName, placeName, priorityName, PRIORITIES, ref,
} from '../ref.js';
import { ActionForm, Chip, ErrorNote, Field, Loading, toast, useNow } from '../ui.js';

const FILTERS = ['area', 'department_id', 'category', 'clock', 'priority'];
const LIMIT = 500;
const URGERS = ['community', 'street', 'district', 'supervisor'];
const CLOCKS = ['sign_for', 'on_site', 'resolve'];

const STREAM_STATES = {
  connecting: ['正在连接实时推送…', 'Connecting to live updates…', 'wait'],
  open: ['实时推送已连接', 'Live updates on', 'ok'],
  reconnecting: ['实时推送重新连接中…', 'Reconnecting live updates…', 'wait'],
  error: ['实时推送中断，正在重试（每分钟自动刷新）', 'Live updates interrupted, retrying (refreshing every minute)', 'bad'],
  signed_out: ['登录已失效，请重新登录', 'Signed out: sign in again', 'bad'],
};

const pick = (q) => Object.fromEntries(FILTERS.filter((k) => q?.[k]).map((k) => [k, q[k]]));
const inside = (path, area) => !area || path === area || path.startsWith(`${area}/`);
const dept = (it) => it.department_name || deptName(it.department_id);

export default function Board({ query, user }) {
  const isDept = user.role === 'department';
  const canUrge = URGERS.includes(user.role);
  const home = isDept ? null : user.area;
  const [filters, setFilters] = useState(() => pick(query));
  const [data, setData] = useState(null);
  const [error, setError] = useState(null);
  const [stream, setStream] = useState('connecting');
  const [feed, setFeed] = useState([]);
  const [positions, setPositions] = useState(() => new Map());
  const now = useNow(1000);
  const seq = useRef(0);
  const pending = useRef(null);
  const filterKey = JSON.stringify(filters);

  useEffect(() => { document.title = `${t('指挥大屏', 'Command board')} · ${t('吹哨', 'Whistle')}`; }, []);

  async function load() {
    const mine = ++seq.current;
    const q = { ...filters, limit: LIMIT };
    try {
      const [overdue, near] = await Promise.all([
        api('tracking', '/overdue', { query: q }), api('tracking', '/near-overdue', { query: q })]);
      if (mine !== seq.current) return;
      setData({
        overdue: overdue.items.map((i) => ({ ...i, board: 'overdue' })),
        near: near.items.map((i) => ({ ...i, board: 'near' })),
        asOf: overdue.as_of, at: Date.now(),
        truncated: overdue.items.length >= LIMIT || near.items.length >= LIMIT,
      });
      setError(null);
    } catch (err) {
      if (mine === seq.current) setError(err);
    }
  }
  // many changes at once (a burst of timers) make one reload
  const soon = () => {
    clearTimeout(pending.current);
    pending.current = setTimeout(load, 250);
  };

  // filters: kept in the address (a board can be bookmarked), loaded, streamed
  useEffect(() => {
    const u = new URL(location.href);
    FILTERS.forEach((k) => (filters[k] ? u.searchParams.set(k, filters[k]) : u.searchParams.delete(k)));
    history.replaceState(history.state, '', u.pathname + u.search);
    load();
    setFeed([]);
    setStream('connecting');
    const close = openStream('/api/tracking/boards/stream', {
      query: filters,
      onState: setStream,
      onEvent: (ev) => {
        // `ready` (also after a reconnect): what changed before the stream's position is read
        // once more; each change after it comes as its own message.
        if (ev.type !== 'ready' && ev.data && typeof ev.data === 'object') {
          setFeed((xs) => [{ ...ev.data, key: ev.id ?? `${Date.now()}` }, ...xs].slice(0, 40));
        }
        soon();
      },
    });
    return () => { close(); clearTimeout(pending.current); };
  }, [filterKey]);

  // a near-late clock turns late at its deadline: read the boards again then
  useEffect(() => {
    if (!data?.near.length) return undefined;
    const next = Math.min(...data.near.map((i) => new Date(i.due_at).getTime()));
    const id = setTimeout(load, Math.min(Math.max(next - Date.now() + 500, 500), 2 ** 31 - 1));
    return () => clearTimeout(id);
  }, [data]);

  // without the stream, read the boards every minute
  useEffect(() => {
    if (stream === 'open') return undefined;
    const id = setInterval(load, 60_000);
    return () => clearInterval(id);
  }, [stream, filterKey]);

  // where each case is (intake knows the reported position and address), looked up once;
  // department staff do not read intake's cases: their items stand on their grids
  const known = useRef(new Map());
  useEffect(() => {
    if (!data || isDept) return;
    const missing = [...new Set([...data.overdue, ...data.near].map((i) => i.case_id))]
      .filter((id) => !known.current.has(id));
    if (!missing.length) return;
    missing.forEach((id) => known.current.set(id, null));
    let live = true;
    (async () => {
      const queue = [...missing];
      const worker = async () => {
        while (queue.length) {
          const id = queue.shift();
          try {
            const c = await api('intake', `/cases/${id}`);
            known.current.set(id, { lat: c.location?.lat, lon: c.location?.lon, address: c.location?.address });
          } catch { /* not readable here: the grid stands for it */ }
        }
      };
      await Promise.all([worker(), worker(), worker(), worker()]);
      if (live) setPositions(new Map(known.current));
    })();
    return () => { live = false; };
  }, [data]);

  const items = useMemo(() => (data ? [...data.overdue, ...data.near] : []), [data]);
  const set = (k, v) => setFilters((f) => { const n = { ...f }; if (v) n[k] = v; else delete n[k]; return n; });
  const state = STREAM_STATES[stream] ?? STREAM_STATES.connecting;
  const scope = filters.area ? placeName(filters.area) : isDept ? deptName(user.department_id) : areaName(user.area);

  return html`<section class="page wide board-screen" id="board-screen">
    <header class="board-head">
      <div class="board-title">
        <h1>${t('指挥大屏', 'Command board')}</h1>
        <p class="board-scope">${scope} · ${t('超时临期督办', 'late & near-late clocks')}</p>
      </div>
      <div class="board-status">
        <p class=${`stream-state ${state[2]}`} role="status" aria-live="polite">
          <span class="dot" aria-hidden="true"></span>${t(state[0], state[1])}</p>
        <p class="muted small">${data ? t(`最后更新 ${fmtTime(data.at, { date: false, seconds: true })}`,
          `Updated ${fmtTime(data.at, { date: false, seconds: true })}`) : t('加载中…', 'Loading…')}
          · ${t(`北京时间 ${fmtTime(now, { seconds: true })}`, `Beijing ${fmtTime(now, { seconds: true })}`)}</p>
      </div>
      <div class="actions">
        <${FullScreen} />
        <button type="button" onClick=${load}>${t('立即刷新', 'Refresh now')}</button>
      </div>
    </header>

    <${Filters} user=${user} filters=${filters} set=${set} reset=${() => setFilters({})} />
    <${ErrorNote} error=${error} />
    ${data ? html`<${Counters} data=${data} now=${now} />` : html`<${Loading} />`}

    <div class="board-body">
      <section class="board-panel map-panel" aria-labelledby="board-map-h">
        <div class="panel-head">
          <h2 id="board-map-h">${t('辖区地图', 'Jurisdiction map')}</h2>
          <${Legend} area=${home} />
        </div>
        <${MapView} area=${home} focus=${filters.area} items=${items} positions=${positions} />
      </section>
      <div class="board-lists">
        <${ItemList} id="overdue" tone="red" title=${t('超时（红灯）', 'Late (red)')}
          items=${data?.overdue} now=${now} canUrge=${canUrge} positions=${positions} reload=${load}
          empty=${t('没有超时的案件', 'Nothing is late')} />
        <${ItemList} id="near" tone="yellow" title=${t('临期（黄灯）', 'Near-late (yellow)')}
          items=${data?.near} now=${now} canUrge=${canUrge} positions=${positions} reload=${load}
          empty=${t('没有临期的案件', 'Nothing is near its deadline')} />
      </div>
      <${Feed} feed=${feed} />
    </div>
    ${data?.truncated ? html`<p class="muted small">${t(`每块榜单最多显示 ${LIMIT} 条，请用筛选缩小范围。`,
      `Each board shows at most ${LIMIT} items; narrow it with the filters.`)}</p>` : null}
  </section>`;
}

function FullScreen() {
  const [on, setOn] = useState(!!document.fullscreenElement);
  useEffect(() => {
    const f = () => setOn(!!document.fullscreenElement);
    document.addEventListener('fullscreenchange', f);
    return () => document.removeEventListener('fullscreenchange', f);
  }, []);
  if (!document.fullscreenEnabled) return null;
  const toggle = () => (document.fullscreenElement ? document.exitFullscreen()
    : document.getElementById('board-screen')?.requestFullscreen()).catch(() => null);
  return html`<button type="button" aria-pressed=${on} onClick=${toggle}>
    ${on ? t('退出全屏', 'Exit full screen') : t('全屏显示', 'Full screen')}</button>`;
}

function Filters({ user, filters, set, reset }) {
  const isDept = user.role === 'department';
  const areas = useMemo(() => {
    const root = isDept ? null : user.area;
    return (ref.features?.features ?? []).map((f) => f.properties)
      .filter((p) => p.level !== 'district' && inside(p.path, root) && p.path !== root)
      .sort((a, b) => a.path.localeCompare(b.path));
  }, [user.area]);
  const depth = (p) => p.path.split('/').length - (isDept ? 1 : user.area.split('/').length);
  const groups = ref.categories.filter((c) => !c.parent_code);
  const active = FILTERS.some((k) => filters[k]);
  return html`<form class="board-filters" aria-label=${t('筛选', 'Filters')} onSubmit=${(e) => e.preventDefault()}>
    <${Field} label=${t('辖区', 'Area')}>${(id) => html`
      <select id=${id} value=${filters.area ?? ''} onChange=${(e) => set('area', e.target.value)}>
        <option value="">${t('全部辖区', 'All areas')}${user.area && !isDept ? `（${areaName(user.area)}）` : ''}</option>
        ${areas.map((p) => html`<option value=${p.path}>${'\u3000'.repeat(Math.max(depth(p) - 1, 0))}${p.name}</option>`)}
      </select>`}<//>
    ${isDept ? null : html`<${Field} label=${t('责任部门', 'Department')}>${(id) => html`
      <select id=${id} value=${filters.department_id ?? ''} onChange=${(e) => set('department_id', e.target.value)}>
        <option value="">${t('全部部门', 'All departments')}</option>
        ${ref.departments.map((d) => html`<option value=${d.id}>${d.name}</option>`)}
      </select>`}<//>`}
    <${Field} label=${t('案件大类', 'Category')}>${(id) => html`
      <select id=${id} value=${filters.category ?? ''} onChange=${(e) => set('category', e.target.value)}>
        <option value="">${t('全部大类', 'All categories')}</option>
        ${groups.map((c) => html`<option value=${c.code}>${c.name}</option>`)}
      </select>`}<//>
    <${Field} label=${t('时限', 'Clock')}>${(id) => html`
      <select id=${id} value=${filters.clock ?? ''} onChange=${(e) => set('clock', e.target.value)}>
        <option value="">${t('全部时限', 'All clocks')}</option>
        ${CLOCKS.map((c) => html`<option value=${c}>${clockName(c)}</option>`)}
      </select>`}<//>
    <${Field} label=${t('紧急程度', 'Priority')}>${(id) => html`
      <select id=${id} value=${filters.priority ?? ''} onChange=${(e) => set('priority', e.target.value)}>
        <option value="">${t('全部', 'All')}</option>
        ${PRIORITIES.map(([k]) => html`<option value=${k}>${priorityName(k)}</option>`)}
      </select>`}<//>
    <button type="button" class="reset" disabled=${!active} onClick=${reset}>${t('清除筛选', 'Clear filters')}</button>
  </form>`;
}

function Counters({ data, now }) {
  const all = [...data.overdue, ...data.near];
  const today = beijingDay(now);
  const escalated = data.overdue.filter((i) => i.escalation_level).length;
  const urgedToday = all.filter((i) => i.last_urged_at && beijingDay(i.last_urged_at) === today).length;
  const departments = new Set(all.map((i) => i.department_id)).size;
  const worst = data.overdue.reduce((m, i) => Math.max(m, lateSeconds(i, now)), 0);
  const predicted = data.near.filter(isPredicted).length;
  const more = data.truncated ? '+' : '';
  const c = (tone, n, zh, en, note) => html`<li class=${`counter ${tone}`}>
    <span class="n">${n}</span><span class="what">${t(zh, en)}</span>
    ${note ? html`<span class="note">${note}</span>` : null}</li>`;
  return html`<ul class="counters board-counters" aria-label=${t('统计', 'Counts')}>
    ${c('red', `${data.overdue.length}${more}`, '超时（红灯）', 'Late (red)', t('时限已过', 'past the deadline'))}
    ${c('yellow', `${data.near.length - predicted}${more}`, '临期（黄灯）', 'Near-late (yellow)', t('已预警未超时', 'warned, not yet late'))}
    ${c('purple', predicted, '预计超时', 'Likely late', t('未到预警但预计会超时', 'not yet warned, forecast to be late'))}
    ${c('red', escalated, '已逐级上报', 'Escalated', t('超时后上报到社区/街道/区', 'up the ladder after the deadline'))}
    ${c('blue', urgedToday, '今日已督办', 'Urged today', t('在榜案件中今天被督办的', 'on the boards, urged today'))}
    ${c('plain', departments, '涉及部门', 'Departments', t('超时或临期的部门数', 'with late or near-late clocks'))}
    ${c('plain', worst ? fmtDuration(worst) : '—', '最长超时', 'Longest late', t('超时最久的一项', 'the latest item'))}
  </ul>`;
}

function Legend({ area }) {
  const streets = new Set((ref.features?.features ?? []).filter((f) => f.properties.level === 'grid' && inside(f.properties.path, area))
    .map((f) => f.properties.path.split('/').slice(0, 2).join('/')));
  return html`<ul class="map-legend" aria-label=${t('图例', 'Legend')}>
    <li><span class="swatch zone red" aria-hidden="true"></span>${t('网格内有超时（红灯）', 'grid with a late clock (red)')}</li>
    <li><span class="swatch zone yellow" aria-hidden="true"></span>${t('网格内有临期（黄灯）', 'grid with a near-late clock (yellow)')}</li>
    <li><span class="swatch dot red" aria-hidden="true"></span><span class="swatch dot yellow" aria-hidden="true"></span>${t('案件上报位置', 'reported position')}</li>
    ${streets.size > 1 ? html`<li><span class="swatch line street" aria-hidden="true"></span>${t('街道边界', 'street boundary')}</li>` : null}
    <li><span class="swatch line" aria-hidden="true"></span>${t('社区边界', 'community boundary')}</li>
  </ul>`;
}

function MapView({ area, focus, items, positions }) {
  const box = useRef(null);
  const map = useRef(null);
  const [state, setState] = useState({ ready: false, error: null, empty: false });
  const tick = useNow(30_000);
  useEffect(() => {
    let live = true;
    BoardMap.create(box.current, { area }).then((m) => {
      if (!live) { m.destroy(); return; }
      map.current = m;
      setState({ ready: true, error: null, empty: !m.hasGrids() });
    }).catch((error) => live && setState({ ready: false, error, empty: false }));
    return () => { live = false; map.current?.destroy(); map.current = null; };
  }, [area]);
  useEffect(() => { if (state.ready) map.current?.update(items, positions); }, [state.ready, items, positions, tick]);
  useEffect(() => { if (state.ready) map.current?.focus(focus); }, [state.ready, focus]);
  const late = items.filter((i) => i.board === 'overdue').length;
  return html`<div class="map-wrap">
    <div ref=${box} class="map board-map" role="region"
      aria-label=${t(`辖区网格地图：超时 ${late} 项，临期 ${items.length - late} 项，详见右侧列表`,
        `Grid map: ${late} late, ${items.length - late} near-late; the lists beside it give the details`)}></div>
    ${state.error ? html`<${ErrorNote} error=${state.error} />` : null}
    ${state.empty ? html`<p class="map-note">${t('辖区内没有可绘制的网格边界', 'No grid boundaries to draw in this area')}</p>` : null}
  </div>`;
}

function ItemList({ id, tone, title, items, now, canUrge, positions, reload, empty }) {
  return html`<section class=${`board-panel list-panel ${tone}`} aria-labelledby=${`${id}-h`}>
    <div class="panel-head">
      <h2 id=${`${id}-h`}>${title}</h2>
      <span class=${`panel-count ${tone}`}>${items ? t(`${items.length} 项`, `${items.length}`) : '…'}</span>
    </div>
    ${!items ? html`<${Loading} />` : items.length === 0 ? html`<p class="board-empty">${empty}</p>`
      : html`<ol class="board-items">${items.map((it) => html`<${Item} key=${`${it.assignment_id}-${it.clock}`}
        it=${it} now=${now} canUrge=${canUrge} place=${positions.get(it.case_id)} reload=${reload} />`)}</ol>`}
  </section>`;
}

function Item({ it, now, canUrge, place, reload }) {
  const [urging, setUrging] = useState(false);
  const late = it.board === 'overdue';
  const s = lateSeconds(it, now);
  // a near-late item whose deadline passed a moment ago waits for the next read as "late"
  const turned = !late && s >= 0;
  const predicted = isPredicted(it) && !turned; // likely late, before its warning light
  return html`<li class=${`board-item ${late ? 'overdue' : 'near'}${predicted ? ' predicted' : ''}`}>
    <div class="item-top">
      <a class="case-no" href=${`/cases/${it.case_id}`}>${it.case_no}</a>
      ${predicted ? html`<${PredictedBadge} />`
        : html`<${Chip} tone=${late || turned ? 'red' : 'yellow'}>${late || turned ? t('超时', 'Late') : t('临期', 'Near-late')}<//>`}
      ${it.priority === 'urgent' ? html`<${Chip} tone="red">${priorityName('urgent')}<//>` : null}
      <span class=${`late-by ${late || turned ? 'red' : 'yellow'}`}>${lateText(it, now)}</span>
    </div>
    <div class="item-what" title=${categoryPath(it.category)}>
      <strong>${categoryName(it.category)}</strong>
      <span> · ${placeName(it.area_path)}</span>
      ${place?.address ? html`<span> · ${place.address}</span>` : null}
    </div>
    <div class="item-meta">
      <span class="dept">${dept(it)}</span>
      <span>${clockName(it.clock)} ${t('截止', 'due')} ${fmtTime(it.due_at)}</span>
      <span class=${it.escalation_level ? 'escalated' : ''}>${escalationText(it)}</span>
      <span>${urgeText(it)}</span>
      ${canUrge ? html`<button type="button" class="urge-toggle" aria-expanded=${urging}
        onClick=${() => setUrging(!urging)}>${urging ? t('取消督办', 'Cancel') : t('督办', 'Urge')}<span class="sr-only"> ${it.case_no}</span></button>` : null}
    </div>
    ${late ? null : html`<${ForecastNote} it=${it} />`}
    ${urging ? html`<${UrgeForm} it=${it} done=${() => { setUrging(false); reload(); }} />` : null}
  </li>`;
}

function UrgeForm({ it, done }) {
  const [note, setNote] = useState('');
  // one key per form: a retried submit (a lost answer) urges nobody twice
  const key = useRef(crypto.randomUUID?.() ?? `${Date.now()}-${Math.random()}`).current;
  const input = useRef(null);
  useEffect(() => { input.current?.focus(); }, []);
  const submit = async () => {
    if (!note.trim()) throw new Error(t('请填写督办要求', 'Write what the department is asked to do'));
    const res = await api('tracking', `/cases/${it.case_id}/urge`, {
      method: 'POST', body: { note: note.trim(), department_id: it.department_id },
      headers: { 'Idempotency-Key': key },
    });
    const u = res.urgings[0];
    toast(u ? t(`已督办 ${u.department_name}（${it.case_no} 第 ${u.count} 次）`, `Urged ${u.department_name} (${it.case_no}, #${u.count})`)
      : t('已督办', 'Urged'));
    done();
  };
  return html`<${ActionForm} className="urge-form" onSubmit=${submit} submitLabel=${t('发送督办', 'Send urging')}>
    <${Field} label=${t(`督办要求（${dept(it)}）`, `Urging to ${dept(it)}`)} required>${(id) => html`
      <textarea id=${id} ref=${input} maxlength="500" rows="2" value=${note}
        placeholder=${t('如：请立即报到并反馈处置进度', 'e.g. sign for it now and report progress')}
        onInput=${(e) => setNote(e.target.value)}></textarea>`}<//>
  <//>`;
}

function Feed({ feed }) {
  return html`<section class="board-panel feed-panel" aria-labelledby="feed-h">
    <div class="panel-head"><h2 id="feed-h">${t('实时动态', 'Live changes')}</h2></div>
    ${feed.length === 0 ? html`<p class="board-empty">${t('打开本页后的变化会显示在这里', 'Changes since this page opened appear here')}</p>`
      : html`<ol class="feed">${feed.map((c) => html`<li key=${c.key}>
        <time datetime=${c.occurred_at}>${fmtTime(c.occurred_at, { date: false, seconds: true })}</time>
        <${Chip} tone=${changeTone(c.change)}>${changeName(c.change)}<//>
        <a href=${`/cases/${c.case_id}`}>${c.case_no}</a>
        <span class="muted">${c.department_name || deptName(c.department_id)} · ${clockName(c.clock)}</span>
      </li>`)}</ol>`}
  </section>`;
}

