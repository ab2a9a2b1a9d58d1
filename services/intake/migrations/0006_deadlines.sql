-- Issue 4 item 7: the reporter's view of each case's clocks, kept from tracking's events
-- (case.clock_started / case.clock_stopped / case.overdue) — tracking owns the clocks.
CREATE TABLE case_clocks (
    case_id       uuid NOT NULL REFERENCES cases (id),
    assignment_id uuid NOT NULL,
    clock         text NOT NULL,
    department_id text NOT NULL,
    due_at        timestamptz NOT NULL,
    state         text NOT NULL CHECK (state IN ('running', 'stopped', 'overdue')),
    updated_at    timestamptz NOT NULL,
    PRIMARY KEY (assignment_id, clock)
);
-- Derived from case_clocks on every clock event: the nearest deadline still open, and
-- whether any clock of the case is overdue.
ALTER TABLE cases ADD COLUMN deadline_at timestamptz;
ALTER TABLE cases ADD COLUMN overdue boolean NOT NULL DEFAULT false;
