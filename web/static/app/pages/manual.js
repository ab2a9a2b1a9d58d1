// 人工派单: whistled cases no routing rule, default unit or liaison unit could take (or that
// every candidate rejected), oldest first, in the caller's subtree — each dispatched by hand.
import { html, useState } from '../../vendor/preact-htm.mjs';
import { api } from '../api.js';
import { fmtDuration, fmtTime, t } from '../i18n.js';
import { categoryPath, deptName, placeName, priorityName } from '../ref.js';
import { Chip, Empty, ErrorNote, Loading, Page, toast, useAsync, useNow } from '../ui.js';
import { ManualDispatchForm } from '../casework/dispatch-form.js';

const PAGE = 50;

function Waiting({ item, now, onDone }) {
  const [open, setOpen] = useState(false);
  const headId = `mq-${item.case_id}`;
  return html`<li class="cw-queue-item" aria-labelledby=${headId}>
    <div class="row">
      <h2 id=${headId} class="cw-queue-title"><a href=${`/cases/${item.case_id}`}>${item.case_no}</a>
        <span> · ${categoryPath(item.category)}</span></h2>
      ${item.priority === 'urgent' ? html`<${Chip} tone="red">${priorityName(item.priority)}<//>`
        : html`<${Chip}>${priorityName(item.priority)}<//>`}
    </div>
    <p class="cw-desc">${item.description}</p>
    <dl class="facts small">
      <dt>${t('位置', 'Place')}</dt><dd>${placeName(item.area_path)}</dd>
      <dt>${t('待派原因', 'Why it waits')}</dt><dd>${item.reason}</dd>
      ${item.departments?.length ? html`<dt>${t('吹哨点名', 'Named')}</dt>
        <dd>${item.departments.map(deptName).join(t('、', ', '))}</dd>` : null}
      ${item.note ? html`<dt>${t('吹哨说明', 'Whistle note')}</dt><dd>${item.note}</dd>` : null}
      <dt>${t('吹哨时间', 'Whistled')}</dt><dd>${fmtTime(item.whistled_at)}</dd>
      <dt>${t('已等待', 'Waiting for')}</dt>
      <dd>${fmtDuration((now - new Date(item.queued_at).getTime()) / 1000)}
        <span class="muted small"> (${t('自', 'since')} ${fmtTime(item.queued_at)})</span></dd>
    </dl>
    <button type="button" class=${open ? '' : 'primary'} aria-expanded=${open}
      aria-controls=${`${headId}-form`} onClick=${() => setOpen(!open)}>
      ${open ? t('收起', 'Close') : t(`人工派单 ${item.case_no}`, `Dispatch ${item.case_no} by hand`)}</button>
    ${open ? html`<div id=${`${headId}-form`} class="cw-queue-form">
      <${ManualDispatchForm} caseId=${item.case_id} areaPath=${item.area_path}
        onDone=${(msg) => { toast(`${item.case_no}${t('：', ': ')}${msg}`); onDone(); }} />
    </div>` : null}
  </li>`;
}

export default function ManualDispatch() {
  const [limit, setLimit] = useState(PAGE);
  const now = useNow(30_000);
  const q = useAsync(() => api('dispatch', '/manual-dispatch', { query: { limit } }), [limit]);
  const items = q.data ?? [];
  return html`<${Page} title=${t('人工派单', 'Manual dispatch')}
    actions=${html`<button type="button" onClick=${q.reload} disabled=${q.loading}>${t('刷新', 'Refresh')}</button>`}>
    <p class="muted">${t('没有派单规则、默认责任主体或包联单位可派，或候选部门都已退单的案件，在此由社区、街道或区指挥中心指定部门。',
    'Cases no rule, default unit or liaison unit could take — or that every candidate rejected — wait here for the community, street or district command to choose a department.')}</p>
    <${ErrorNote} error=${q.error} />
    ${q.data === undefined && q.loading ? html`<${Loading} />` : null}
    ${q.data !== undefined ? html`
      <p class="cw-count" role="status">${t(`待人工派单 ${items.length} 件`, `${items.length} waiting`)}</p>
      ${items.length ? html`<ul class="list cw-queue">${items.map((item) => html`
        <${Waiting} key=${item.case_id} item=${item} now=${now} onDone=${q.reload} />`)}</ul>`
    : html`<${Empty}>${t('没有等待人工派单的案件', 'No case is waiting for manual dispatch')}<//>`}
      ${items.length >= limit && limit < 200 ? html`<p><button type="button" onClick=${() => setLimit(Math.min(limit + PAGE, 200))}>
        ${t('加载更多', 'Load more')}</button></p>` : null}` : null}
  <//>`;
}
