-- Issue 6: KPIs (考核) and the red/black list (红黑榜).

-- The thresholds of the red/black list (ranking.thresholds_to_data): every replacement is
-- kept; the newest revision is in use.
CREATE TABLE kpi_thresholds (
    revision    bigserial PRIMARY KEY,
    data        jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    created_by  text NOT NULL
);

-- KPIs count the assignments dispatched in a period.
CREATE INDEX assignments_dispatched_at ON assignments (dispatched_at);
-- A case's ratings (群众评单) and rework requests (返工), read per assignment by the KPIs.
CREATE INDEX case_events_kpi ON case_events (case_id, type, occurred_at)
    WHERE type IN ('case.rated', 'case.rework_requested');
