-- Issue 6: the supervisors' boards (超时 / 临期督办), their live stream and urging (督办).

-- Urging (督办): how often each assignment was hurried, counted under the assignment's row lock.
ALTER TABLE assignments ADD COLUMN urge_count int NOT NULL DEFAULT 0;
ALTER TABLE assignments ADD COLUMN last_urged_at timestamptz;

-- The boards read running clocks only, by deadline (overdue: due_at <= now) or by warning
-- instant (near-overdue: warn_at <= now < due_at): a board costs what is late (or warned),
-- not what is open. Stopped clocks — nearly all of them, over time — are in neither index.
CREATE INDEX clocks_running_due ON clocks (due_at) WHERE state = 'running';
CREATE INDEX clocks_running_warn ON clocks (warn_at)
    WHERE state = 'running' AND warn_at IS NOT NULL;
-- The escalation level a clock reached: its fired escalation timers (few per clock).
CREATE INDEX timers_fired_escalations ON timers (assignment_id, clock, revision, step)
    WHERE kind = 'escalation' AND state = 'fired';

-- The board feed: one row per change a board shows — a clock started, moved, stopped,
-- paused or resumed (any state change), a warning, an overdue alert, an escalation, an
-- urging — written by triggers in the very transaction that makes the change, whatever code
-- path makes it. The live stream (GET /boards/stream) reads it in (txid, seq) order and only
-- below the oldest transaction still running (pg_snapshot_xmin): a bigserial alone is
-- handed out before commit, so a reader could pass a seq whose transaction commits later.
CREATE TABLE board_feed (
    seq             bigserial PRIMARY KEY,
    txid            xid8 NOT NULL DEFAULT pg_current_xact_id(),
    change          text NOT NULL,    -- started moved stopped paused resumed warned overdue escalated urged
    case_id         uuid NOT NULL,
    assignment_id   uuid NOT NULL,
    clock           text,             -- NULL for an urging (it concerns the whole assignment)
    event_id        uuid,             -- the case event behind it (alerts, urgings)
    occurred_at     timestamptz NOT NULL,
    detail          jsonb NOT NULL DEFAULT '{}'::jsonb,
    recorded_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX board_feed_position ON board_feed (txid, seq);

CREATE FUNCTION board_feed_clock() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    what text;
BEGIN
    IF TG_OP = 'INSERT' THEN
        what := CASE WHEN NEW.state = 'running' THEN 'started' ELSE NEW.state END;
    ELSIF NEW.state IS DISTINCT FROM OLD.state THEN
        what := CASE WHEN NEW.state = 'running' THEN 'resumed' ELSE NEW.state END;
    ELSIF NEW.due_at IS DISTINCT FROM OLD.due_at OR NEW.warn_at IS DISTINCT FROM OLD.warn_at THEN
        what := 'moved';
    ELSE
        RETURN NULL;
    END IF;
    INSERT INTO board_feed (change, case_id, assignment_id, clock, occurred_at, detail)
    VALUES (what, NEW.case_id, NEW.assignment_id, NEW.clock,
            CASE WHEN TG_OP = 'INSERT' THEN NEW.started_at
                 WHEN what = 'stopped' THEN coalesce(NEW.stopped_at, now())
                 ELSE now() END,
            jsonb_strip_nulls(jsonb_build_object('because', NEW.stopped_by)));
    RETURN NULL;
END $$;

CREATE TRIGGER clocks_to_board_feed AFTER INSERT OR UPDATE ON clocks
    FOR EACH ROW EXECUTE FUNCTION board_feed_clock();

CREATE FUNCTION board_feed_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO board_feed (change, case_id, assignment_id, clock, event_id, occurred_at, detail)
    VALUES (CASE NEW.type WHEN 'case.deadline_warning' THEN 'warned'
                          WHEN 'case.overdue' THEN 'overdue'
                          WHEN 'case.escalated' THEN 'escalated'
                          ELSE 'urged' END,
            NEW.case_id, (NEW.payload->>'assignment_id')::uuid, NEW.payload->>'clock',
            NEW.event_id, NEW.occurred_at,
            jsonb_strip_nulls(jsonb_build_object(
                'level', NEW.payload->'level', 'step', NEW.payload->'step',
                'count', NEW.payload->'count', 'note', NEW.payload->'note',
                'by', NEW.actor->'name')));
    RETURN NULL;
END $$;

CREATE TRIGGER alerts_to_board_feed AFTER INSERT ON case_events
    FOR EACH ROW
    WHEN (NEW.type IN ('case.deadline_warning', 'case.overdue', 'case.escalated', 'case.urged'))
    EXECUTE FUNCTION board_feed_event();
