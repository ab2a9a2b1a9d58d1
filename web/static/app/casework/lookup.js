// Addresses people type or paste: /cases/YA20261206-0002 — the case number (案件编号) is what
// a grid worker says on the phone and writes in a chat group, not the case's internal id. It
// is looked up and the address replaced by the case's own; an address that is neither says so
// in words instead of the server's validation text.
import { useEffect } from '../../vendor/preact-htm.mjs';
import { api } from '../api.js';
import { t } from '../i18n.js';
import { navigate } from '../router.js';
import { ErrorNote, html, Loading, Page, useAsync } from '../ui.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const CASE_NO = /^[A-Z]{1,8}\d{8}-\d{1,6}$/i;

export const isId = (s) => UUID.test(String(s ?? ''));

export function notFound(what) {
  const e = new Error(what === 'assignment'
    ? t('派单不存在，请检查链接。', 'No such assignment; check the link.')
    : t('案件不存在，请检查链接或案件编号。', 'No such case; check the link or the case number.'));
  e.code = 'not_found';
  return e;
}

// The console address of the case numbered `no` for this user, or null.
export async function addressOfCaseNo(no, user) {
  if (!CASE_NO.test(no)) return null;
  const want = no.toUpperCase();
  if (user.role !== 'department') {
    const found = await api('intake', '/cases', { query: { q: want, limit: 20 } });
    const hit = found.find((c) => c.case_no?.toUpperCase() === want);
    return hit ? `/cases/${hit.id}` : null;
  }
  // a department reads a case through its assignment: the newest one of this case
  const rows = await api('dispatch', `/departments/${encodeURIComponent(user.department_id)}/assignments`,
    { query: { case_no: want, sort: 'dispatched_at', limit: 1 } });
  if (rows.length) return `/assignments/${rows[0].id}`;
  return null;
}

// The page for an address that is not an id: finds the case by its number and moves there, or
// says in words that there is no such case (or assignment).
export function Lookup({ no, user, what = 'case' }) {
  const q = useAsync(() => addressOfCaseNo(no, user), [no]);
  useEffect(() => { if (q.data) navigate(q.data, { replace: true }); }, [q.data]);
  const error = q.error ?? (q.data === null ? notFound(what) : null);
  const back = user.role === 'department' ? ['/inbox', t('返回待办', 'Back to inbox')]
    : user.role === 'grid_worker' ? ['/worker', t('返回我的网格', 'Back to my grids')] : ['/cases', t('返回案件列表', 'Back to cases')];
  return html`<${Page} title=${what === 'assignment' ? t('派单', 'Assignment') : t('案件详情', 'Case')}>
    ${error ? html`<${ErrorNote} error=${error} /><p><a href=${back[0]}>${back[1]}</a></p>`
      : html`<${Loading} label=${t(`正在查找 ${no}…`, `Looking up ${no}…`)} />`}
  <//>`;
}
