-- Outbox relay: claim rows with a lease and publish outside any transaction; back off a
-- failing row on its own schedule; park a row the broker refuses for good.
--   claimed_by / claimed_until  the relay that claimed the row and until when; a crashed
--                               relay's rows are taken over once claimed_until has passed
--   next_attempt_at             a failed row is not tried again before this (capped backoff)
--   parked_at                   set after the row's bounded attempts; re-driven by an operator
ALTER TABLE outbox
    ADD COLUMN claimed_by      text,
    ADD COLUMN claimed_until   timestamptz,
    ADD COLUMN next_attempt_at timestamptz,
    ADD COLUMN parked_at       timestamptz;
CREATE INDEX outbox_parked ON outbox (key, id) WHERE parked_at IS NOT NULL AND sent_at IS NULL;
