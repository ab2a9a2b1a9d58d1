-- Parked events: messages a consumer received but could neither handle nor dead-letter
-- now, kept whole so that nothing is dropped: an event type or version this build does
-- not know yet (a producer rolled out first), a dead-letter copy the broker refused, or
-- the full copy of an oversize message whose dead-letter copy was truncated. The offset is
-- committed only after the row is; replaying a row re-feeds its value through the
-- consumer's normal handling (the inbox makes a second replay a no-op).
CREATE TABLE parked_events (
    id             bigserial PRIMARY KEY,
    consumer       text NOT NULL,
    topic          text NOT NULL,
    "partition"    int NOT NULL,
    "offset"       bigint NOT NULL,
    key            bytea,
    headers        jsonb NOT NULL DEFAULT '[]',
    value          bytea NOT NULL,
    value_sha256   bytea GENERATED ALWAYS AS (sha256(value)) STORED,
    type           text,
    version        int,
    reason         text NOT NULL,
    error          text,
    parked_at      timestamptz NOT NULL DEFAULT now(),
    replayed_at    timestamptz,
    replay_outcome text,
    -- The same message parked twice is one row (the hash tells a message apart from
    -- another one at the same offset after the broker lost its log).
    UNIQUE (consumer, topic, "partition", "offset", value_sha256)
);
CREATE INDEX parked_events_pending ON parked_events (consumer, id) WHERE replayed_at IS NULL;
