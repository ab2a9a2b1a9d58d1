-- Issue 4: the community's side of the loop — fix on the spot, rework, rating, reopening,
-- merging duplicates — and the status view that loops (the latest event's status wins).
ALTER TABLE cases ADD COLUMN status_at timestamptz;
UPDATE cases SET status_at = updated_at;
ALTER TABLE cases ALTER COLUMN status_at SET NOT NULL;
ALTER TABLE cases ADD COLUMN resolution text
    CHECK (resolution IN ('verified', 'on_spot', 'merged'));
ALTER TABLE cases ADD COLUMN merged_into uuid REFERENCES cases (id);
ALTER TABLE cases ADD COLUMN rework_count int NOT NULL DEFAULT 0;
ALTER TABLE cases ADD COLUMN reopen_count int NOT NULL DEFAULT 0;
-- Departments dispatch assigned the case to (from case.dispatched): a rework goes back to them.
ALTER TABLE cases ADD COLUMN assigned_departments text[] NOT NULL DEFAULT '{}';

-- Open cases by category and time: the possible-duplicate search on every report.
CREATE INDEX cases_open_recent ON cases (category, reported_at)
    WHERE status NOT IN ('closed');

-- Reporters credited on a primary case when duplicates are merged into it.
CREATE TABLE case_reporters (
    case_id      uuid NOT NULL REFERENCES cases (id),
    from_case_id uuid NOT NULL REFERENCES cases (id),
    reporter     text NOT NULL,
    reported_by  text NOT NULL,
    reported_at  timestamptz NOT NULL,
    PRIMARY KEY (case_id, from_case_id)
);

-- 群众评单: one rating per case, by the grid worker or through a one-time link.
CREATE TABLE ratings (
    case_id   uuid PRIMARY KEY REFERENCES cases (id),
    score     int NOT NULL CHECK (score BETWEEN 1 AND 5),
    comment   text,
    channel   text NOT NULL CHECK (channel IN ('grid_worker', 'link')),
    rated_by  text NOT NULL,
    rated_at  timestamptz NOT NULL
);

-- One-time rating links: only the token's hash is stored.
CREATE TABLE rating_links (
    token_hash text PRIMARY KEY,
    case_id    uuid NOT NULL REFERENCES cases (id),
    created_by text NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    used_at    timestamptz
);
