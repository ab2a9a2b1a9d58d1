-- Issue 16: when each case will actually be resolved (预计办结时间) and which are likely to miss
-- their deadline (预计超期) — recomputed by the events that change it (handlers.forecast).

-- One row per open or resolved assignment with a resolution clock: its forecast.
CREATE TABLE forecasts (
    assignment_id       uuid PRIMARY KEY REFERENCES assignments (assignment_id),
    case_id             uuid NOT NULL REFERENCES cases (case_id),
    expected_at         timestamptz NOT NULL,
    earliest            timestamptz NOT NULL,
    latest              timestamptz NOT NULL,
    basis               text NOT NULL CHECK (basis IN ('history', 'category', 'deadline', 'resolved')),
    due_at              timestamptz,
    sample_size         int NOT NULL DEFAULT 0,
    median_seconds      double precision,
    breach_probability  double precision,
    breach_likely       boolean NOT NULL DEFAULT false,
    reason_zh           text,
    reason_en           text,
    computed_at         timestamptz NOT NULL
);
CREATE INDEX forecasts_case ON forecasts (case_id);
-- The near-overdue board adds the assignments likely to miss their deadline (few).
CREATE INDEX forecasts_breach_likely ON forecasts (assignment_id) WHERE breach_likely;

-- The case's forecast (its assignment expected last), as last published.
CREATE TABLE case_forecasts (
    case_id             uuid PRIMARY KEY REFERENCES cases (case_id),
    expected_at         timestamptz,
    earliest            timestamptz,
    latest              timestamptz,
    basis               text,
    due_at              timestamptz,
    sample_size         int NOT NULL DEFAULT 0,
    breach_probability  double precision,
    breach_likely       boolean NOT NULL DEFAULT false,
    reason_zh           text,
    reason_en           text,
    computed_at         timestamptz NOT NULL
);
-- The sweep re-forecasts open cases whose expected time has come without a resolution.
CREATE INDEX case_forecasts_due ON case_forecasts (expected_at)
    WHERE basis IS NOT NULL AND basis <> 'resolved';

-- The history a forecast rests on: resolved assignments, newest first.
CREATE INDEX assignments_resolved ON assignments (resolved_at) WHERE state = 'resolved';
