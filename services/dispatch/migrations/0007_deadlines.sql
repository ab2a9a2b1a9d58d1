-- The department's inbox shows the deadlines tracking runs (tracking owns the clocks; dispatch
-- keeps what tracking announces): one row per assignment clock, the newest announcement wins.
CREATE TABLE assignment_clocks (
    assignment_id  uuid NOT NULL,
    clock          text NOT NULL,
    due_at         timestamptz NOT NULL,
    running        boolean NOT NULL,
    as_of          timestamptz NOT NULL,   -- occurred_at of the announcement applied
    PRIMARY KEY (assignment_id, clock)
);
-- The inbox reads the earliest running deadline of each assignment.
CREATE INDEX assignment_clocks_running ON assignment_clocks (assignment_id, due_at)
    WHERE running;

-- Urgings (督办) the department has had on an assignment.
CREATE TABLE assignment_urgings (
    assignment_id  uuid PRIMARY KEY,
    count          int NOT NULL CHECK (count > 0),
    last_urged_at  timestamptz NOT NULL,
    last_note      text NOT NULL,
    last_urged_by  text
);
