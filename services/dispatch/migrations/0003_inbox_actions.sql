-- Issue 5: the department inbox actions — 退单 (rejected) and 转办 (transferred) end an
-- assignment without a result; progress notes (办理进展) while it is being handled.
ALTER TABLE assignments DROP CONSTRAINT assignments_state_check;
ALTER TABLE assignments ADD CONSTRAINT assignments_state_check
    CHECK (state IN ('dispatched', 'signed_for', 'resolved', 'rejected', 'transferred'));
-- Why it ended (the rejection's or transfer's reason), when, and (转办) to whom. The partial
-- unique index (one open assignment per case and department) is unchanged: rejected and
-- transferred assignments are not open.
ALTER TABLE assignments ADD COLUMN exit_reason text;
ALTER TABLE assignments ADD COLUMN exited_at timestamptz;
ALTER TABLE assignments ADD COLUMN transferred_to text REFERENCES departments (id);
ALTER TABLE assignments ADD CONSTRAINT assignments_exit_check CHECK (
    state NOT IN ('rejected', 'transferred') OR (exit_reason IS NOT NULL AND exited_at IS NOT NULL));
ALTER TABLE assignments ADD CONSTRAINT assignments_transfer_check CHECK (
    state <> 'transferred' OR transferred_to IS NOT NULL);

CREATE TABLE assignment_notes (
    id            bigserial PRIMARY KEY,
    assignment_id uuid NOT NULL REFERENCES assignments (id),
    note          text NOT NULL CHECK (btrim(note) <> ''),
    actor_subject text NOT NULL,
    actor_name    text,
    created_at    timestamptz NOT NULL
);
CREATE INDEX assignment_notes_of ON assignment_notes (assignment_id, created_at, id);
