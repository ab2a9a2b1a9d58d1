-- Issue 14: a department's inbox reads one (state, priority) slice of its assignments at a
-- time, in dispatch order and only as far as the page reaches (repository.list_assignments),
-- so a page costs what it shows, not the department's whole history. This index serves every
-- slice (both directions) and replaces the one by (department, state, dispatched_at).
CREATE INDEX assignments_inbox_slices
    ON assignments (department_id, state, priority, dispatched_at, id);
DROP INDEX assignments_inbox;
