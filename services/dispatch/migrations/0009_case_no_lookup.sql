-- A department finds a case by its number (案件编号, what people say on the phone and write in
-- a chat group): GET /departments/{id}/assignments?case_no=… reads this index instead of
-- paging through the department's history.
CREATE INDEX assignments_by_case_no ON assignments (department_id, case_no);
