-- Issue 6: approved pauses (挂账 hang / 缓办 defer). While one runs, the assignment's clocks
-- that were running stand still ('paused': no timer of theirs is pending); when it ends
-- (case.resumed) their deadlines move by the time they stood still and they run again.

ALTER TABLE clocks DROP CONSTRAINT clocks_state_check;
ALTER TABLE clocks ADD CONSTRAINT clocks_state_check
    CHECK (state IN ('running', 'paused', 'stopped'));

-- One row per pause request heard of, keyed by dispatch's request id (a decision or a resume
-- may arrive twice, or the resume first). started_at is the approval's occurred_at (NULL
-- while only the resume has been heard); ended_at the resume's — or the event that stopped
-- the clocks (办结, 转办, 结案…) while the pause ran.
CREATE TABLE pauses (
    request_id      uuid PRIMARY KEY,
    assignment_id   uuid NOT NULL,
    case_id         uuid NOT NULL,
    kind            text CHECK (kind IN ('hang', 'defer')),
    reason          text,
    started_at      timestamptz,
    ended_at        timestamptz,
    ended_by        text,
    CHECK (started_at IS NULL OR (kind IS NOT NULL AND reason IS NOT NULL)),
    CHECK ((ended_at IS NULL) = (ended_by IS NULL))
);
CREATE INDEX pauses_assignment ON pauses (assignment_id);
CREATE INDEX pauses_case ON pauses (case_id);
