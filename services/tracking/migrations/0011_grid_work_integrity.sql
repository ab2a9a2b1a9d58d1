-- Issue 16: the seeds' counts and the supervisors' integrity checks (督办: KPI gaming).

-- Where each case came from (案件来源), from its case.reported: counted per area and period.
-- An event from before the contract named the source carries none: grid_patrol, the
-- contract's default (网格巡查).
CREATE TABLE case_origins (
    case_id      uuid PRIMARY KEY,
    source       text NOT NULL,
    reported_at  timestamptz NOT NULL,
    reporter     text
);
CREATE INDEX case_origins_reported_at ON case_origins (reported_at);

-- How each case was last closed (结案), and by whom: verified (核查通过) or on_spot (随手做,
-- 小事不出网格, closed by the grid worker himself). A reopening (重开) after it is noted:
-- such a case is not closed now and counts as no closing.
CREATE TABLE case_closings (
    case_id         uuid PRIMARY KEY,
    event_id        uuid NOT NULL,
    closed_at       timestamptz NOT NULL,
    resolution      text NOT NULL,
    closed_by       text,      -- the actor's subject (the grid worker for on_spot)
    closed_by_name  text,
    closed_by_role  text,
    reopened_at     timestamptz
);
CREATE INDEX case_closings_closed_at ON case_closings (closed_at);

INSERT INTO case_origins (case_id, source, reported_at, reporter)
SELECT DISTINCT ON (case_id) case_id, coalesce(payload->>'source', 'grid_patrol'), occurred_at,
       payload->>'reporter'
FROM case_events WHERE type = 'case.reported'
ORDER BY case_id, occurred_at, seq;

INSERT INTO case_closings (case_id, event_id, closed_at, resolution, closed_by, closed_by_name,
                           closed_by_role, reopened_at)
SELECT DISTINCT ON (e.case_id) e.case_id, e.event_id, e.occurred_at,
       coalesce(e.payload->>'resolution', 'verified'), e.actor->>'subject', e.actor->>'name',
       e.actor->>'role',
       (SELECT min(r.occurred_at) FROM case_events r
        WHERE r.case_id = e.case_id AND r.type = 'case.reopened' AND r.occurred_at > e.occurred_at)
FROM case_events e WHERE e.type = 'case.closed'
ORDER BY e.case_id, e.occurred_at DESC, e.seq DESC;

-- The integrity checks read a period's resolutions, hand-offs (退单/转办) and ratings.
CREATE INDEX assignments_resolved_at ON assignments (resolved_at) WHERE resolved_at IS NOT NULL;
CREATE INDEX assignments_handed_off ON assignments (ended_at)
    WHERE ended_by IN ('case.rejected', 'case.transferred');
CREATE INDEX case_events_ratings ON case_events (occurred_at) WHERE type = 'case.rated';
