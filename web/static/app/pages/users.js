// User management (用户管理, administrator): add users, assign role, jurisdiction, department
// and grids (a grid worker's grids come from here), disable, reset a password.
import { html, useState } from '../../vendor/preact-htm.mjs';
import { api } from '../api.js';
import { t } from '../i18n.js';
import { areaName, deptName, placeName, ref, roleName } from '../ref.js';
import { ActionForm, Chip, ErrorNote, Field, Loading, Page, Table, toast, useAsync } from '../ui.js';

const ROLES = ['grid_worker', 'community', 'street', 'district', 'department', 'supervisor', 'admin'];
const LEVEL_OF_ROLE = { community: 'community', street: 'street', district: 'district' };

function areasOf(levels) {
  return (ref.features?.features ?? []).map((f) => f.properties).filter((a) => levels.includes(a.level));
}

function UserForm({ initial, onDone, onCancel }) {
  const editing = Boolean(initial);
  const [v, setV] = useState(initial ?? { username: '', name: '', role: 'grid_worker', area: '', department_id: '', grids: [], password: '' });
  const set = (k) => (e) => setV({ ...v, [k]: e.target.value });
  const areaLevels = v.role === 'grid_worker' ? ['community'] : LEVEL_OF_ROLE[v.role] ? [LEVEL_OF_ROLE[v.role]] : ['district', 'street', 'community'];
  const gridsHere = areasOf(['grid']).filter((g) => v.area && g.path.startsWith(`${v.area}/`));
  const toggleGrid = (path) => setV({ ...v, grids: v.grids.includes(path) ? v.grids.filter((g) => g !== path) : [...v.grids, path] });

  const submit = async () => {
    const body = { name: v.name, role: v.role, area: v.area,
      department_id: v.role === 'department' ? v.department_id || null : null,
      grids: v.role === 'grid_worker' ? v.grids : [] };
    if (v.password) body.password = v.password;
    const res = editing
      ? await fetchPatch(initial.username, body)
      : await api('auth', '/users', { method: 'POST', body: { username: v.username, ...body } });
    toast(editing ? t(`已保存用户 ${res.name}`, `Saved ${res.name}`) : t(`已添加用户 ${res.name}`, `Added ${res.name}`));
    onDone(res);
  };

  return html`<div class="card"><h2>${editing ? t(`编辑 ${initial.name}`, `Edit ${initial.name}`) : t('添加用户', 'Add a user')}</h2>
    <${ActionForm} onSubmit=${submit} submitLabel=${t('保存', 'Save')}>
      ${editing ? null : html`<${Field} label=${t('用户名', 'Username')} required hint=${t('小写字母、数字和 . _ -', 'a-z, 0-9, . _ -')}>${(id) => html`
        <input id=${id} value=${v.username} onInput=${set('username')} autocomplete="off" autocapitalize="none" required />`}<//>`}
      <${Field} label=${t('姓名', 'Name')} required>${(id) => html`<input id=${id} value=${v.name} onInput=${set('name')} required />`}<//>
      <${Field} label=${t('角色', 'Role')} required>${(id) => html`
        <select id=${id} value=${v.role} onChange=${(e) => setV({ ...v, role: e.target.value, area: '', grids: [] })}>
          ${ROLES.map((r) => html`<option value=${r}>${roleName(r)}</option>`)}</select>`}<//>
      <${Field} label=${v.role === 'grid_worker' ? t('所属社区', 'Community') : t('辖区', 'Jurisdiction')} required>${(id) => html`
        <select id=${id} value=${v.area} onChange=${(e) => setV({ ...v, area: e.target.value, grids: [] })} required>
          <option value="">${t('请选择', 'Choose')}</option>
          ${areasOf(areaLevels).map((a) => html`<option value=${a.path}>${placeName(a.path) || a.name}</option>`)}</select>`}<//>
      ${v.role === 'department' ? html`<${Field} label=${t('所属部门', 'Department')} required>${(id) => html`
        <select id=${id} value=${v.department_id ?? ''} onChange=${set('department_id')} required>
          <option value="">${t('请选择', 'Choose')}</option>
          ${ref.departments.map((d) => html`<option value=${d.id}>${d.name}</option>`)}</select>`}<//>` : null}
      ${v.role === 'grid_worker' ? html`<fieldset><legend>${t('负责的网格', 'Grids walked')}</legend>
        ${gridsHere.length ? html`<div class="choices">${gridsHere.map((g) => html`<label>
          <input type="checkbox" checked=${v.grids.includes(g.path)} onChange=${() => toggleGrid(g.path)} />${g.name}</label>`)}</div>`
          : html`<p class="muted">${t('先选择所属社区', 'Choose the community first')}</p>`}</fieldset>` : null}
      <${Field} label=${editing ? t('重置密码（留空不变）', 'New password (leave empty to keep)') : t('初始密码', 'Initial password')}
        required=${!editing} hint=${t('至少 8 位', 'at least 8 characters')}>${(id) => html`
        <input id=${id} type="password" autocomplete="new-password" value=${v.password ?? ''} onInput=${set('password')} />`}<//>
    <//>
    ${onCancel ? html`<p><button type="button" class="link" onClick=${onCancel}>${t('取消', 'Cancel')}</button></p>` : null}
  </div>`;
}

async function fetchPatch(username, body) {
  return api('auth', `/users/${encodeURIComponent(username)}`, { method: 'PATCH', body });
}

export default function Users() {
  const [role, setRole] = useState('');
  const [editing, setEditing] = useState(null);
  const [adding, setAdding] = useState(false);
  const users = useAsync(() => api('auth', '/users', { query: { role } }), [role]);
  const [error, setError] = useState(null);

  const toggle = async (u) => {
    setError(null);
    try {
      const res = await fetchPatch(u.username, { disabled: !u.disabled });
      toast(res.disabled ? t(`已停用 ${u.name}`, `Disabled ${u.name}`) : t(`已启用 ${u.name}`, `Enabled ${u.name}`));
      users.reload();
    } catch (err) { setError(err); }
  };

  return html`<${Page} title=${t('用户管理', 'Users')} actions=${html`
    <button type="button" class="primary" onClick=${() => { setAdding(true); setEditing(null); }}>${t('添加用户', 'Add a user')}</button>`}>
    ${adding ? html`<${UserForm} onDone=${() => { setAdding(false); users.reload(); }} onCancel=${() => setAdding(false)} />` : null}
    ${editing ? html`<${UserForm} key=${editing.username} initial=${{ ...editing, password: '', department_id: editing.department_id ?? '' }}
      onDone=${() => { setEditing(null); users.reload(); }} onCancel=${() => setEditing(null)} />` : null}
    <div class="card"><${Field} label=${t('按角色筛选', 'Filter by role')}>${(id) => html`
      <select id=${id} value=${role} onChange=${(e) => setRole(e.target.value)}>
        <option value="">${t('全部', 'All')}</option>${ROLES.map((r) => html`<option value=${r}>${roleName(r)}</option>`)}</select>`}<//></div>
    <${ErrorNote} error=${error || users.error} />
    ${users.loading && !users.data ? html`<${Loading} />` : html`<${Table} caption=${t('用户', 'Users')} rowKey=${(u) => u.username}
      rows=${users.data} columns=${[
        { label: t('用户名', 'Username'), render: (u) => u.username },
        { label: t('姓名', 'Name'), render: (u) => u.name },
        { label: t('角色', 'Role'), render: (u) => roleName(u.role) },
        { label: t('辖区 / 部门', 'Area / department'), render: (u) => (u.department_id ? deptName(u.department_id) : placeName(u.area) || areaName(u.area)) },
        { label: t('网格', 'Grids'), render: (u) => u.grids.map((g) => areaName(g)).join('、') || '—' },
        { label: t('状态', 'State'), render: (u) => (u.disabled ? html`<${Chip} tone="red">${t('已停用', 'Disabled')}<//>` : html`<${Chip} tone="green">${t('正常', 'Active')}<//>`) },
        { label: t('操作', 'Actions'), render: (u) => html`<span class="actions">
          <button type="button" onClick=${() => { setEditing(u); setAdding(false); }}>${t('编辑', 'Edit')}<span class="sr-only"> ${u.name}</span></button>
          <button type="button" class=${u.disabled ? '' : 'danger'} onClick=${() => toggle(u)}>
            ${u.disabled ? t('启用', 'Enable') : t('停用', 'Disable')}<span class="sr-only"> ${u.name}</span></button></span>` },
      ]} />`}
  <//>`;
}
