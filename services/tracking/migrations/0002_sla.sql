-- Issue 6: SLA policies and the working calendar as data, policies pinned to assignments,
-- one clock per (assignment, clock kind) and several timers per clock (warning, deadline,
-- escalation steps).

-- The working calendar (工作日历): every replacement is kept; the newest revision is in use.
CREATE TABLE sla_calendars (
    revision    bigserial PRIMARY KEY,
    data        jsonb NOT NULL,           -- calendar_data.calendar_to_data
    created_at  timestamptz NOT NULL DEFAULT now(),
    created_by  text NOT NULL
);

-- SLA policy versions (时限策略): only ever added; a version is in force from effective_from
-- until the next one's.
CREATE TABLE sla_policy_versions (
    version         int PRIMARY KEY CHECK (version > 0),
    effective_from  timestamptz NOT NULL UNIQUE,
    data            jsonb NOT NULL,       -- policy_data.version_to_data
    created_at      timestamptz NOT NULL DEFAULT now(),
    created_by      text NOT NULL
);

-- The policy pinned to an assignment at dispatch (policy_data.pinned_to_data); NULL when no
-- version was in force (then the sign-for clock alone runs, as before SLA policies).
ALTER TABLE assignments ADD COLUMN policy jsonb;
-- 退单/转办 end an assignment without moving its state: no clock of it runs any more.
ALTER TABLE assignments ADD COLUMN ended_at timestamptz;
ALTER TABLE assignments ADD COLUMN ended_by text;

-- One row per running or stopped clock of an assignment: sign_for (签收), on_site (到场),
-- resolve (办结). revision grows when the deadline moves (an approved extension); timers of an
-- older revision no longer fire.
CREATE TABLE clocks (
    assignment_id   uuid NOT NULL REFERENCES assignments (assignment_id),
    clock           text NOT NULL CHECK (clock IN ('sign_for', 'on_site', 'resolve')),
    case_id         uuid NOT NULL REFERENCES cases (case_id),
    started_at      timestamptz NOT NULL,
    warn_at         timestamptz,
    due_at          timestamptz NOT NULL,
    extension_days  int NOT NULL DEFAULT 0,
    revision        int NOT NULL DEFAULT 0,
    state           text NOT NULL DEFAULT 'running' CHECK (state IN ('running', 'stopped')),
    stopped_at      timestamptz,
    stopped_by      text,                 -- the event type that stopped it
    PRIMARY KEY (assignment_id, clock)
);
CREATE INDEX clocks_case ON clocks (case_id);

-- Approved extensions (延期), once each (a decision event may arrive twice).
CREATE TABLE extensions (
    request_id      uuid PRIMARY KEY,
    assignment_id   uuid NOT NULL REFERENCES assignments (assignment_id),
    days            int NOT NULL CHECK (days > 0),
    decided_at      timestamptz NOT NULL
);
CREATE INDEX extensions_assignment ON extensions (assignment_id);

-- Existing timers were the sign-for deadlines: give each its clock.
INSERT INTO clocks (assignment_id, clock, case_id, started_at, due_at, state, stopped_at)
SELECT t.assignment_id, t.clock, t.case_id, coalesce(a.dispatched_at, t.created_at), t.due_at,
       CASE WHEN t.state = 'cancelled' THEN 'stopped' ELSE 'running' END, t.cancelled_at
FROM timers t JOIN assignments a ON a.assignment_id = t.assignment_id;

-- A timer is one stage of a clock: its warning (预警), its deadline (超时) or escalation step
-- n (逐级上报 to level). Escalation steps beyond the ladder are added as the previous fires.
ALTER TABLE timers ADD COLUMN kind text NOT NULL DEFAULT 'deadline'
    CHECK (kind IN ('warning', 'deadline', 'escalation'));
ALTER TABLE timers ADD COLUMN step int NOT NULL DEFAULT 0;
ALTER TABLE timers ADD COLUMN level text;
ALTER TABLE timers ADD COLUMN revision int NOT NULL DEFAULT 0;
ALTER TABLE timers DROP CONSTRAINT timers_assignment_id_clock_key;
ALTER TABLE timers ADD CONSTRAINT timers_one_per_stage
    UNIQUE (assignment_id, clock, kind, step, revision);
