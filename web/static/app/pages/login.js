// Sign-in (登录): username and password; in the embedded demo the demo users are listed.
import { html, useEffect, useState } from '../../vendor/preact-htm.mjs';
import { consoleConfig, login } from '../api.js';
import { getLang, setLang, t } from '../i18n.js';
import { roleName } from '../ref.js';
import { ErrorNote, Field } from '../ui.js';

export default function Login() {
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const [config, setConfig] = useState(null);
  useEffect(() => { consoleConfig().then(setConfig, () => null); document.title = t('登录 · 吹哨', 'Sign in · Whistle'); }, []);

  const submit = async (e) => {
    e.preventDefault();
    if (!username.trim() || !password) {
      setError(new Error(t('请输入用户名和密码', 'Enter your username and password')));
      return;
    }
    setBusy(true); setError(null);
    try { await login(username.trim(), password); } catch (err) { setError(err); } finally { setBusy(false); }
  };
  const pick = (u) => { setUsername(u.username); setPassword(config.demo_password ?? ''); };

  return html`<section class="login">
    <div class="login-card">
      <h1><img src="/static/icon.svg" alt="" width="40" height="40" /> ${t('吹哨', 'Whistle')}</h1>
      <p class="tagline">${t('网格发现、社区吹哨、部门报到', 'Grids find it, communities blow the whistle, departments report in')}</p>
      <form class="form" onSubmit=${submit} novalidate>
        <${Field} label=${t('用户名', 'Username')} required>${(id) => html`
          <input id=${id} name="username" autocomplete="username" autocapitalize="none" required
            value=${username} onInput=${(e) => setUsername(e.target.value)} />`}<//>
        <${Field} label=${t('密码', 'Password')} required>${(id) => html`
          <input id=${id} name="password" type="password" autocomplete="current-password" required
            value=${password} onInput=${(e) => setPassword(e.target.value)} />`}<//>
        <${ErrorNote} error=${error} />
        <button type="submit" class="primary" disabled=${busy}>${busy ? t('登录中…', 'Signing in…') : t('登录', 'Sign in')}</button>
      </form>
      <p><button type="button" class="link" onClick=${() => setLang(getLang() === 'zh' ? 'en' : 'zh')}>
        ${getLang() === 'zh' ? 'English' : '中文'}</button></p>
      ${config?.demo_users?.length ? html`<details class="demo-users">
        <summary>${t('演示账号（密码 ', 'Demo users (password ')}<code>${config.demo_password}</code>)</summary>
        <ul>${config.demo_users.filter((u) => !u.username.endsWith('-duty') || ['cg-duty', 'gd-duty', 'xf-duty'].includes(u.username)).map((u) => html`
          <li><button type="button" class="link" onClick=${() => pick(u)}>${u.name}</button>
            <span class="muted small"> ${u.username} · ${roleName(u.role)}</span></li>`)}</ul>
        <p class="muted small">${t('每个部门都有值班账号 <部门编号>-duty，如 zj-duty。', 'Every department has a duty user <id>-duty, e.g. zj-duty.')}</p>
      </details>` : null}
    </div>
  </section>`;
}
