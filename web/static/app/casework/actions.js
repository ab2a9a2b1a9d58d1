// What the caller may do with the case now, by role and status (intake's and tracking's rules,
// mirrored only to offer the right buttons; the server decides and its refusal is shown):
// 吹哨, 人工派单, 核查结案 / 返工, 督办, 合并重复, 随手做, 重新打开, 评价链接 and 代录评价.
import { html, useRef, useState } from '../../vendor/preact-htm.mjs';
import { api } from '../api.js';
import { fmtTime, t } from '../i18n.js';
import { assignmentStateName, deptName, PRIORITIES } from '../ref.js';
import { ActionForm, Chip, ErrorNote, Field, Loading, PhotoInput, useAsync } from '../ui.js';
import { DeptChecks, DeptSelect } from './departments.js';
import { ManualDispatchForm } from './dispatch-form.js';
import { QrCode } from './qr.js';
import { describe, newKey, paren } from './words.js';

const AREA = ['community', 'street', 'district'];
const WITH_COMMUNITY = ['reported', 'unroutable', 'reopened'];
// who may blow a whistle at which level (intake's domain.check_whistle_level)
const LEVELS = {
  community: ['community', 'street'], street: ['community', 'street', 'district'],
  district: ['community', 'street', 'district'],
};
const WHISTLE_NAME = {
  community: ['社区吹哨', 'Community whistle'], street: ['街道吹哨', 'Street whistle'], district: ['区级吹哨', 'District whistle'],
};

const required = (value, zh, en) => {
  if (!value.trim()) throw new Error(t(zh, en));
  return value.trim();
};

function Card({ id, title, children, intro }) {
  return html`<section class="card cw-action" aria-labelledby=${id}>
    <h2 id=${id}>${title}</h2>
    ${intro ? html`<p class="muted small">${intro}</p>` : null}
    ${children}
  </section>`;
}

function WhistleForm({ f, user, onDone }) {
  const levels = LEVELS[user.role] ?? ['community'];
  const [level, setLevel] = useState(levels.includes(user.role) ? user.role : levels[0]);
  const [lead, setLead] = useState('');
  const [co, setCo] = useState([]);
  const [priority, setPriority] = useState(f.priority);
  const [note, setNote] = useState('');
  const submit = async () => {
    if (co.length && !lead) throw new Error(t('点名协办部门前，请先选择主办部门', 'Choose the lead before naming co-handlers'));
    const body = { level, departments: lead ? [lead, ...co.filter((d) => d !== lead)] : [] };
    if (priority !== f.priority) body.priority = priority;
    if (note.trim()) body.note = note.trim();
    await api('intake', `/cases/${f.id}/whistle`, { method: 'POST', body });
    setLead(''); setCo([]); setNote('');
    const how = t(...WHISTLE_NAME[level]);
    onDone(lead ? t(`已吹哨（${how}），点名${deptName(lead)}主办`, `${how} blown; ${deptName(lead)} named to lead`)
      : t(`已吹哨（${how}），按派单规则派单`, `${how} blown; routed by the rules`));
  };
  return html`<${Card} id="cw-whistle-h" title=${t('吹哨', 'Blow the whistle')}
    intro=${t('把案件交给职能部门办理。可点名召集部门（第一个为主办），不点名则按派单规则、默认责任主体和包联单位派单。',
    'Hand the case to the departments. Name them (the first leads) or leave it to the routing rules, default units and liaison units.')}>
    <${ActionForm} onSubmit=${submit} submitLabel=${t('吹哨', 'Blow the whistle')}>
      <fieldset><legend>${t('吹哨层级', 'Level')}</legend><div class="choices">
        ${levels.map((l) => html`<label><input type="radio" name="cw-level" value=${l} checked=${level === l}
          onChange=${() => setLevel(l)} /> ${t(...WHISTLE_NAME[l])}</label>`)}</div></fieldset>
      <${DeptSelect} label=${t('点名主办部门（可选）', 'Named lead department (optional)')} value=${lead}
        onChange=${(v) => { setLead(v); setCo(co.filter((d) => d !== v)); }} areaPath=${f.area_path}
        emptyLabel=${t('不点名，按派单规则派单', 'Nobody named: route by the rules')} />
      ${lead ? html`<${DeptChecks} legend=${t('点名协办部门（可选）', 'Named co-handling departments (optional)')}
        values=${co} onChange=${setCo} areaPath=${f.area_path} exclude=${[lead]} />` : null}
      <${Field} label=${t('优先级', 'Priority')}>${(id) => html`
        <select id=${id} value=${priority} onChange=${(e) => setPriority(e.target.value)}>
          ${PRIORITIES.map(([k, zh, en]) => html`<option value=${k}>${t(zh, en)}</option>`)}
        </select>`}<//>
      <${Field} label=${t('吹哨说明', 'Note')}>${(id) => html`
        <textarea id=${id} maxlength="1000" value=${note} onInput=${(e) => setNote(e.target.value)}
          placeholder=${t('如：请尽快清运，居民反映强烈', 'e.g. residents complain; please clear it soon')}></textarea>`}<//>
    <//>
  <//>`;
}

function ResolvedResults({ tl }) {
  if (!tl) return null;
  const events = tl.events;
  const lastRework = events.map((e) => e.type).lastIndexOf('case.rework_requested');
  const results = events.slice(lastRework + 1).filter((e) => e.type === 'case.resolved');
  if (!results.length) return null;
  return html`<ul class="cw-results">${results.map((e) => html`<li key=${e.event_id}>${describe(e)}
    <span class="muted small"> · ${fmtTime(e.occurred_at)}</span></li>`)}</ul>`;
}

function VerifyForms({ f, tl, onDone }) {
  const [note, setNote] = useState('');
  const [reason, setReason] = useState('');
  const close = async () => {
    await api('intake', `/cases/${f.id}/close`, { method: 'POST', body: { note: note.trim() || null } });
    setNote('');
    onDone(t('核查通过，已结案', 'Verified and closed'));
  };
  const rework = async () => {
    const why = required(reason, '请填写返工原因', 'Give the reason for rework');
    await api('intake', `/cases/${f.id}/rework`, { method: 'POST', body: { reason: why } });
    setReason('');
    onDone(t('已退回部门返工', 'Sent back for rework'));
  };
  return html`<${Card} id="cw-verify-h" title=${t('核查', 'Verify on site')}
    intro=${t('部门已报告办结。请到现场核查：通过则结案，未解决则退回返工。', 'The department reported it done. Check on site: close it, or send it back for rework.')}>
    <${ResolvedResults} tl=${tl} />
    <div class="cw-verify">
      <${ActionForm} onSubmit=${close} submitLabel=${t('核查通过，结案', 'Passed: close the case')}>
        <${Field} label=${t('核查意见', 'Check note')}>${(id) => html`
          <textarea id=${id} maxlength="1000" value=${note} onInput=${(e) => setNote(e.target.value)}
            placeholder=${t('如：现场已清理干净', 'e.g. cleared, checked on site')}></textarea>`}<//>
      <//>
      <${ActionForm} danger onSubmit=${rework} submitLabel=${t('未通过，退回返工', 'Failed: send back for rework')}>
        <${Field} label=${t('返工原因', 'Reason for rework')} required>${(id) => html`
          <textarea id=${id} maxlength="1000" required value=${reason} onInput=${(e) => setReason(e.target.value)}
            placeholder=${t('如：现场仍有垃圾未清运', 'e.g. rubbish still there')}></textarea>`}<//>
      <//>
    </div>
  <//>`;
}

function UrgeForm({ f, open, onDone }) {
  const [note, setNote] = useState('');
  const [dept, setDept] = useState('');
  // the same request retried (after a lost answer) keeps its key and urges nobody twice
  const key = useRef(newKey());
  const edit = (fn) => (e) => { fn(e.target.value); key.current = newKey(); };
  const depts = [...new Set(open.map((a) => a.department_id))];
  const submit = async () => {
    const text = required(note, '请填写督办内容', 'Say what the department is asked');
    const res = await api('tracking', `/cases/${f.id}/urge`, {
      method: 'POST', body: { note: text, department_id: dept || undefined },
      headers: { 'Idempotency-Key': key.current },
    });
    key.current = newKey();
    setNote('');
    const who = (res?.urgings ?? []).map((u) => `${u.department_name ?? deptName(u.department_id)}${paren(t(`第${u.count}次`, `#${u.count}`))}`);
    onDone(t(`已督办：${who.join('、')}`, `Urged: ${who.join(', ')}`));
  };
  return html`<${Card} id="cw-urge-h" title=${t('督办', 'Urge')}
    intro=${t('催促正在办理的部门，督办记入时间线并通知部门值班台。', 'Hurry the departments handling it; the urging goes on the timeline and to their duty desks.')}>
    <${ActionForm} onSubmit=${submit} submitLabel=${t('督办', 'Urge')}>
      ${depts.length > 1 ? html`<${Field} label=${t('督办部门', 'Department')}>${(id) => html`
        <select id=${id} value=${dept} onChange=${edit(setDept)}>
          <option value="">${t('全部承办部门', 'Every department handling it')}</option>
          ${depts.map((d) => html`<option value=${d}>${deptName(d)}</option>`)}
        </select>`}<//>` : html`<p class="small">${t('督办部门：', 'Department: ')}${depts.map(deptName).join('、')}</p>`}
      <${Field} label=${t('督办内容', 'What is asked')} required>${(id) => html`
        <textarea id=${id} maxlength="500" required value=${note} onInput=${edit(setNote)}
          placeholder=${t('如：请今天内报到并到场处置', 'e.g. sign for it and go on site today')}></textarea>`}<//>
    <//>
  <//>`;
}

function MergeForm({ f, onDone }) {
  const dups = useAsync(() => api('intake', `/cases/${f.id}/duplicates`), [f.id]);
  const [primary, setPrimary] = useState('');
  const submit = async () => {
    if (!primary) throw new Error(t('请选择主案件', 'Choose the primary case'));
    const chosen = dups.data.find((d) => d.id === primary);
    await api('intake', `/cases/${f.id}/merge`, { method: 'POST', body: { primary_case_id: primary } });
    setPrimary('');
    onDone(t(`已合并到主案件 ${chosen?.case_no ?? ''}`, `Merged into ${chosen?.case_no ?? 'the primary case'}`));
  };
  return html`<${Card} id="cw-merge-h" title=${t('合并重复案件', 'Merge a duplicate')}
    intro=${t('同类、同网格或 200 米内、7 天内上报的未结案件。合并后本案件结案，上报人记入主案件。',
    'Open cases of the same category in the same grid or within 200 m, reported in the last 7 days. This case then closes; its reporter is credited on the primary.')}>
    <${ErrorNote} error=${dups.error} />
    ${dups.data === undefined ? (dups.loading ? html`<${Loading} />` : null)
    : dups.data.length === 0 ? html`<p class="muted">${t('未发现可能重复的案件', 'No possible duplicate found')}</p>`
      : html`<${ActionForm} onSubmit=${submit} submitLabel=${t('把本案件合并到所选主案件', 'Merge this case into the chosen one')} danger>
        <fieldset><legend>${t('主案件', 'Primary case')}</legend>
          ${dups.data.map((d) => html`<label class="cw-dup" key=${d.id}>
            <input type="radio" name="cw-primary" value=${d.id} checked=${primary === d.id} onChange=${() => setPrimary(d.id)} />
            <span><strong>${d.case_no}</strong> · ${d.description}
              <span class="cw-block muted small">${fmtTime(d.reported_at)}${d.distance_m != null ? t(` · 相距约 ${Math.round(d.distance_m)} 米`, ` · about ${Math.round(d.distance_m)} m away`) : t(' · 同一网格', ' · same grid')}</span></span>
          </label>`)}
        </fieldset>
        ${primary ? html`<p class="small"><a href=${`/cases/${primary}`}>${t('先看看所选主案件', 'Look at the chosen case first')}</a></p>` : null}
      <//>`}
  <//>`;
}

function FixOnSpotForm({ f, onDone }) {
  const [note, setNote] = useState('');
  const [files, setFiles] = useState([]);
  const submit = async () => {
    const text = required(note, '请说明如何现场解决', 'Say how it was fixed');
    await api('intake', `/cases/${f.id}/fix-on-spot`, { method: 'POST', body: { note: text } });
    let failed = 0;
    for (const file of files) {
      const form = new FormData();
      form.append('file', file);
      try {
        await api('intake', `/cases/${f.id}/photos`, { method: 'POST', query: { kind: 'after' }, form });
      } catch { failed += 1; }
    }
    setNote(''); setFiles([]);
    onDone(failed ? t(`已随手做结案，但有 ${failed} 张照片未能上传`, `Fixed and closed, but ${failed} photo(s) failed to upload`)
      : t('已随手做结案', 'Fixed on the spot and closed'), failed ? 'error' : 'ok');
  };
  return html`<${Card} id="cw-fix-h" title=${t('随手做（现场解决）', 'Fixed on the spot')}
    intro=${t('小事不出网格：自己现场解决的，直接结案，可附整改后照片。', 'Small things stay in the grid: fixed it yourself? Close it, with an after-photo.')}>
    <${ActionForm} onSubmit=${submit} submitLabel=${t('随手做结案', 'Close as fixed on the spot')}>
      <${Field} label=${t('处理说明', 'What was done')} required>${(id) => html`
        <textarea id=${id} maxlength="1000" required value=${note} onInput=${(e) => setNote(e.target.value)}></textarea>`}<//>
      <${PhotoInput} label=${t('整改后照片（可选）', 'After-photos (optional)')} files=${files} onChange=${setFiles} />
    <//>
  <//>`;
}

function ReopenForm({ f, onDone }) {
  const [reason, setReason] = useState('');
  const submit = async () => {
    const why = required(reason, '请填写重新打开的原因', 'Give the reason');
    await api('intake', `/cases/${f.id}/reopen`, { method: 'POST', body: { reason: why } });
    setReason('');
    onDone(t('案件已重新打开', 'Case reopened'));
  };
  return html`<details class="card cw-action cw-reopen"><summary>${t('重新打开（结案 7 天内）', 'Reopen (within 7 days of closing)')}</summary>
    <${ActionForm} onSubmit=${submit} submitLabel=${t('重新打开', 'Reopen')} danger>
      <${Field} label=${t('重新打开原因', 'Reason to reopen')} required>${(id) => html`
        <textarea id=${id} maxlength="1000" required value=${reason} onInput=${(e) => setReason(e.target.value)}
          placeholder=${t('如：问题复发，居民再次反映', 'e.g. the problem is back')}></textarea>`}<//>
    <//>
  </details>`;
}

function RatingLink({ f, link, setLink, onDone }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const [copied, setCopied] = useState(false);
  const make = async () => {
    setBusy(true); setError(null); setCopied(false);
    try {
      const made = await api('intake', `/cases/${f.id}/rating-link`, { method: 'POST' });
      setLink({ caseId: f.id, url: new URL(made.path, location.origin).href, expires_at: made.expires_at });
      onDone(t('已生成评价链接，请群众扫码评价', 'Rating link made: let the resident scan it'));
    } catch (err) { setError(err); } finally { setBusy(false); }
  };
  const copy = async (input) => {
    try {
      await navigator.clipboard.writeText(link.url);
      setCopied(true);
    } catch {
      input?.select();
      setCopied(document.execCommand?.('copy') ?? false);
    }
  };
  const inputRef = useRef(null);
  const mine = link && link.caseId === f.id ? link : null;
  return html`<div class="cw-rating-link">
    <h3>${t('评价链接', 'Rating link')}</h3>
    <p class="muted small">${t('一次性链接，群众无需登录，用手机扫码即可为办理结果打分。', 'A one-time link: the resident scans it and rates the outcome, no account needed.')}</p>
    <${ErrorNote} error=${error} />
    ${mine ? html`<div class="cw-link-box">
      <${QrCode} text=${mine.url} label=${t(`评价链接二维码（案件 ${f.case_no}）`, `QR code of the rating link (case ${f.case_no})`)} />
      <div class="cw-link-text">
        <${Field} label=${t('评价链接地址', 'Rating link address')}>${(id) => html`
          <input id=${id} ref=${inputRef} readonly value=${mine.url} onFocus=${(e) => e.target.select()} />`}<//>
        <div class="actions">
          <button type="button" onClick=${() => copy(inputRef.current)}>${t('复制链接', 'Copy link')}</button>
          <a class="cw-button" href=${mine.url} target="_blank" rel="noopener">${t('打开评价页', 'Open the rating page')}</a>
        </div>
        <p class="small" role="status">${copied ? t('已复制', 'Copied') : ''}</p>
        <p class="small muted">${t(`有效期至 ${fmtTime(mine.expires_at)}。群众评价一次后，本案件的评价链接都不能再用。`,
    `Valid until ${fmtTime(mine.expires_at)}. Once the resident has rated, no link of this case works any more.`)}</p>
      </div></div>` : null}
    <button type="button" class=${mine ? '' : 'primary'} onClick=${make} disabled=${busy}>
      ${busy ? t('生成中…', 'Making…') : mine ? t('重新生成评价链接', 'Make a new rating link') : t('生成评价链接', 'Make a rating link')}</button>
  </div>`;
}

function RateForm({ f, onDone }) {
  const [score, setScore] = useState(0);
  const [comment, setComment] = useState('');
  const words = ['', t('很不满意', 'Very unhappy'), t('不满意', 'Unhappy'), t('一般', 'So-so'), t('满意', 'Happy'), t('很满意', 'Very happy')];
  const submit = async () => {
    if (!score) throw new Error(t('请选择满意度', 'Choose a score'));
    await api('intake', `/cases/${f.id}/rating`, { method: 'POST', body: { score, comment: comment.trim() || null } });
    setScore(0); setComment('');
    onDone(t(`已代群众评价 ${score} 分`, `Rating ${score}/5 recorded`));
  };
  return html`<details class="cw-rate-behalf"><summary>${t('代群众录入评价', "Record the resident's rating")}</summary>
    <${ActionForm} onSubmit=${submit} submitLabel=${t('提交评价', 'Record rating')}>
      <fieldset><legend>${t('满意度', 'Satisfaction')}</legend><div class="choices">
        ${[5, 4, 3, 2, 1].map((n) => html`<label><input type="radio" name="cw-score" value=${n} checked=${score === n}
          onChange=${() => setScore(n)} /> ${n}${t('分', '')} · ${words[n]}</label>`)}</div></fieldset>
      <${Field} label=${t('群众意见', "Resident's comment")}>${(id) => html`
        <textarea id=${id} maxlength="1000" value=${comment} onInput=${(e) => setComment(e.target.value)}></textarea>`}<//>
    <//>
  </details>`;
}

function Rating({ f, tl, link, setLink, onDone }) {
  const rated = tl?.events.filter((e) => e.type === 'case.rated').pop();
  return html`<${Card} id="cw-rating-h" title=${t('群众评价', "Resident's rating")}>
    ${rated ? html`<p><${Chip} tone=${rated.payload.score >= 4 ? 'green' : rated.payload.score <= 2 ? 'red' : 'yellow'}>
        ${t(`${rated.payload.score} 分 / 5 分`, `${rated.payload.score} of 5`)}<//> ${describe(rated)}</p>`
    : html`<${RatingLink} f=${f} link=${link} setLink=${setLink} onDone=${onDone} />
      <${RateForm} f=${f} onDone=${onDone} />`}
  <//>`;
}

export function CaseActions({ f, tl, user, onDone, ratingLink, setRatingLink }) {
  const role = user.role;
  const status = f.status;
  const area = AREA.includes(role);
  const verifier = area || role === 'grid_worker';
  const events = tl?.events ?? [];
  const merged = events.some((e) => e.type === 'case.merged'
    || (e.type === 'case.closed' && e.payload?.resolution === 'merged'));
  const open = (tl?.assignments ?? []).filter((a) => a.state === 'dispatched' || a.state === 'signed_for');
  const cards = [];

  if (role === 'department') {
    const mine = (tl?.assignments ?? []).filter((a) => a.department_id === user.department_id);
    cards.push(html`<${Card} id="cw-dept-h" title=${t('本部门的派单', 'Your assignments')}>
      ${mine.length ? html`<ul class="cw-plain">${mine.map((a) => html`<li key=${a.assignment_id}>
        <a href=${`/assignments/${a.assignment_id}`}>${t('打开派单', 'Open the assignment')}${paren(`${assignmentStateName(a.state)}${t('，派单于 ', ', dispatched ')}${fmtTime(a.dispatched_at)}`)}</a></li>`)}</ul>`
      : html`<p class="muted">${t('时间线中没有本部门的派单。', 'No assignment of your department on the timeline.')}</p>`}
      <p class="muted small">${t('部门在派单页报到、退单、转办、反馈进展和办结。', 'Departments sign for, reject, transfer, report progress and resolve on the assignment page.')}</p>
    <//>`);
  }
  if (area && WITH_COMMUNITY.includes(status)) cards.push(html`<${WhistleForm} key="whistle" f=${f} user=${user} onDone=${onDone} />`);
  if (area && status === 'unroutable') {
    cards.push(html`<${Card} key="manual" id="cw-manual-h" title=${t('人工派单', 'Dispatch by hand')}
      intro=${t('没有可自动派单的部门，请指定主办部门。', 'No department could be chosen automatically: choose the lead.')}>
      <${ManualDispatchForm} caseId=${f.id} areaPath=${f.area_path} onDone=${(msg) => onDone(msg)} />
      <p class="small"><a href="/manual-dispatch">${t('查看人工派单队列', 'Open the manual dispatch queue')}</a></p>
    <//>`);
  }
  if (role === 'grid_worker' && (status === 'reported' || status === 'reopened')) {
    cards.push(html`<${FixOnSpotForm} key="fix" f=${f} onDone=${onDone} />`);
  }
  if (verifier && status === 'resolved') cards.push(html`<${VerifyForms} key="verify" f=${f} tl=${tl} onDone=${onDone} />`);
  if ((area || role === 'supervisor') && status !== 'closed' && open.length) {
    cards.push(html`<${UrgeForm} key="urge" f=${f} open=${open} onDone=${onDone} />`);
  }
  if (area && WITH_COMMUNITY.includes(status)) cards.push(html`<${MergeForm} key="merge" f=${f} onDone=${onDone} />`);
  if (verifier && status === 'closed' && !merged) {
    cards.push(html`<${Rating} key="rating" f=${f} tl=${tl} link=${ratingLink} setLink=${setRatingLink} onDone=${onDone} />`);
    cards.push(html`<${ReopenForm} key="reopen" f=${f} onDone=${onDone} />`);
  }
  if (!cards.length) {
    const why = role === 'supervisor' ? t('没有正在办理的部门可督办。', 'No department is handling it now to urge.')
      : status === 'closed' ? t('案件已结案。', 'The case is closed.')
        : ['dispatched', 'signed_for', 'rework', 'whistled'].includes(status)
          ? t('部门办理中，办结后在此核查。', 'With the departments; verify it here once they report it done.') : '';
    return why ? html`<section class="card cw-action"><h2>${t('可办事项', 'What you can do')}</h2><p class="muted">${why}</p></section>` : null;
  }
  return html`<div class="cw-actions" aria-label=${t('可办事项', 'What you can do')} role="region">${cards}</div>`;
}

