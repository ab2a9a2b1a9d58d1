// 人工派单: a case nobody is configured for goes by hand to a lead department and, if need be,
// co-handlers, chosen by name. Used on the queue and on the case page.
import { html, useState } from '../../vendor/preact-htm.mjs';
import { api } from '../api.js';
import { t } from '../i18n.js';
import { deptName } from '../ref.js';
import { ActionForm, Field } from '../ui.js';
import { DeptChecks, DeptSelect } from './departments.js';

export function ManualDispatchForm({ caseId, areaPath, onDone }) {
  const [lead, setLead] = useState('');
  const [co, setCo] = useState([]);
  const [note, setNote] = useState('');
  const submit = async () => {
    if (!lead) throw new Error(t('请选择主办部门', 'Choose the lead department'));
    const made = await api('dispatch', `/manual-dispatch/${caseId}`, {
      method: 'POST',
      body: { department_id: lead, co_department_ids: co.filter((d) => d !== lead), note: note.trim() || null },
    });
    setLead(''); setCo([]); setNote('');
    const who = made.map((a) => a.department_name ?? deptName(a.department_id)).join(t('、', ', '));
    onDone?.(t(`已派单给${who}`, `Dispatched to ${who}`), made);
  };
  return html`<${ActionForm} onSubmit=${submit} submitLabel=${t('派单', 'Dispatch')} className="cw-dispatch">
    <${DeptSelect} label=${t('主办部门', 'Lead department')} required value=${lead}
      onChange=${(v) => { setLead(v); setCo(co.filter((d) => d !== v)); }} areaPath=${areaPath} />
    <${DeptChecks} legend=${t('协办部门（可选）', 'Co-handling departments (optional)')} values=${co}
      onChange=${setCo} areaPath=${areaPath} exclude=${lead ? [lead] : []} />
    <${Field} label=${t('派单说明', 'Note to the departments')}>${(id) => html`
      <textarea id=${id} maxlength="2000" value=${note} onInput=${(e) => setNote(e.target.value)}
        placeholder=${t('如：请联系社区核实后上门', 'e.g. call the community before visiting')}></textarea>`}<//>
  <//>`;
}
