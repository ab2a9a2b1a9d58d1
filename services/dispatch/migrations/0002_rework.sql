-- Issue 4/5: a failed on-site check (返工) sends the case back to the same department as a
-- new assignment that points at the one it reworks (and so counts as rework).
ALTER TABLE assignments ADD COLUMN rework_of uuid REFERENCES assignments (id);
CREATE INDEX assignments_case_department ON assignments (case_id, department_id, resolved_at);
