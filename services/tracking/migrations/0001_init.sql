-- The read model: each case as its events describe it (facts from the newest event,
-- status only ever moving forward).
CREATE TABLE cases (
    case_id     uuid PRIMARY KEY,
    case_no     text NOT NULL,
    area_path   text NOT NULL,
    category    text NOT NULL,
    priority    text NOT NULL CHECK (priority IN ('urgent', 'normal', 'minor')),
    status      text NOT NULL,
    updated_at  timestamptz NOT NULL
);
CREATE INDEX cases_area_path ON cases (area_path text_pattern_ops);

-- The timeline: every case event tracking has seen (its own overdue alerts included).
-- Read in the order things happened: occurred_at, then the order we recorded them.
CREATE TABLE case_events (
    event_id        uuid PRIMARY KEY,
    seq             bigserial NOT NULL,
    case_id         uuid NOT NULL,
    type            text NOT NULL,
    version         int NOT NULL,
    occurred_at     timestamptz NOT NULL,
    producer        text NOT NULL,
    correlation_id  text,
    causation_id    uuid,
    actor           jsonb,
    payload         jsonb NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX case_events_timeline ON case_events (case_id, occurred_at, seq);

-- One row per dispatch to a department (派单), moved forward by sign-for (报到) and resolve.
CREATE TABLE assignments (
    assignment_id   uuid PRIMARY KEY,
    case_id         uuid NOT NULL REFERENCES cases (case_id),
    department_id   text NOT NULL,
    department_name text,
    role            text,
    state           text NOT NULL CHECK (state IN ('dispatched', 'signed_for', 'resolved')),
    dispatched_at   timestamptz,
    signed_for_at   timestamptz,
    resolved_at     timestamptz
);
CREATE INDEX assignments_case ON assignments (case_id);
-- The overdue board only ever looks at assignments still waiting for their sign-for.
CREATE INDEX assignments_awaiting_sign_for ON assignments (department_id)
    WHERE state = 'dispatched';

-- Durable timers: one per (assignment, clock). The scheduler claims due rows with
-- FOR UPDATE SKIP LOCKED and moves them pending → fired exactly once.
CREATE TABLE timers (
    id              bigserial PRIMARY KEY,
    case_id         uuid NOT NULL REFERENCES cases (case_id),
    assignment_id   uuid NOT NULL REFERENCES assignments (assignment_id),
    clock           text NOT NULL,
    due_at          timestamptz NOT NULL,
    state           text NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'fired', 'cancelled')),
    fired_at        timestamptz,
    cancelled_at    timestamptz,
    -- the event that started the clock, so the alert carries the same correlation chain
    correlation_id  text,
    causation_id    uuid,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (assignment_id, clock)
);
-- A tick costs what is due, not what is open: only pending rows are in this index.
CREATE INDEX timers_due ON timers (due_at) WHERE state = 'pending';
CREATE INDEX timers_case_pending ON timers (case_id) WHERE state = 'pending';
