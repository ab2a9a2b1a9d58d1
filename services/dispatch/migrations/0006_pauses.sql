-- Issue 6: pauses (挂账 hang / 缓办 defer). A department handling a case asks for its clocks to
-- stand still, with a reason; a supervisor approves or refuses; an approved pause runs until
-- the work is resumed (恢复办理) or the assignment ends (办结, 转办) — recorded either way.
CREATE TABLE pause_requests (
    id            uuid PRIMARY KEY,
    assignment_id uuid NOT NULL REFERENCES assignments (id),
    case_id       uuid NOT NULL,
    department_id text NOT NULL REFERENCES departments (id),
    kind          text NOT NULL CHECK (kind IN ('hang', 'defer')),
    reason        text NOT NULL CHECK (btrim(reason) <> ''),
    state         text NOT NULL CHECK (state IN ('pending', 'approved', 'refused', 'ended')),
    requested_by  text NOT NULL,
    requested_at  timestamptz NOT NULL,
    decided_by    text,
    decided_at    timestamptz,
    comment       text,
    ended_by      text,
    ended_at      timestamptz,
    ended_how     text CHECK (ended_how IN ('resumed', 'resolved', 'transferred')),
    end_note      text,
    CHECK (state = 'pending' OR (decided_by IS NOT NULL AND decided_at IS NOT NULL)),
    CHECK (state <> 'refused' OR comment IS NOT NULL),
    CHECK ((state = 'ended') = (ended_at IS NOT NULL AND ended_by IS NOT NULL
                                AND ended_how IS NOT NULL))
);
-- One pending request and one running pause per assignment at a time.
CREATE UNIQUE INDEX pause_requests_one_pending ON pause_requests (assignment_id)
    WHERE state = 'pending';
CREATE UNIQUE INDEX pause_requests_one_running ON pause_requests (assignment_id)
    WHERE state = 'approved';
CREATE INDEX pause_requests_by_state ON pause_requests (state, requested_at);
CREATE INDEX pause_requests_of_assignment ON pause_requests (assignment_id, requested_at);
