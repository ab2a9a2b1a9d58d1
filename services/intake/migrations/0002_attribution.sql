-- Issue 3: every report is attributed to the authenticated subject, an Idempotency-Key is
-- scoped to the caller (another user's key never returns someone else's case), and the
-- per-user report rate limit counts a user's recent reports.
ALTER TABLE cases ADD COLUMN reported_by text NOT NULL DEFAULT '';
CREATE INDEX cases_reported_by ON cases (reported_by, reported_at);

ALTER TABLE idempotency_keys ADD COLUMN subject text NOT NULL DEFAULT '';
ALTER TABLE idempotency_keys DROP CONSTRAINT idempotency_keys_pkey;
ALTER TABLE idempotency_keys ADD PRIMARY KEY (subject, key);
