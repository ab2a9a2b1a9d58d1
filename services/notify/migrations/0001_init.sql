-- Who hears about cases: a department's duty desk (值班室) or a supervisor (督办) of an area.
CREATE TABLE recipients (
    id             text PRIMARY KEY,
    name           text NOT NULL,
    kind           text NOT NULL CHECK (kind IN ('department', 'supervisor')),
    department_id  text,
    area_path      text,
    webhook_url    text,
    webhook_secret text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CHECK (kind <> 'department' OR department_id IS NOT NULL),
    CHECK (kind <> 'supervisor' OR area_path IS NOT NULL)
);
CREATE INDEX recipients_department ON recipients (department_id) WHERE kind = 'department';
CREATE INDEX recipients_area ON recipients (area_path) WHERE kind = 'supervisor';

-- The in-app inbox: one message per recipient and event, however often the event arrives.
CREATE TABLE inbox_messages (
    id           bigserial PRIMARY KEY,
    recipient_id text NOT NULL REFERENCES recipients (id),
    event_id     uuid NOT NULL,
    case_id      uuid NOT NULL,
    type         text NOT NULL,
    title        text NOT NULL,
    body         text NOT NULL,
    title_en     text NOT NULL,
    body_en      text NOT NULL,
    link         text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    read_at      timestamptz,
    UNIQUE (recipient_id, event_id)
);
CREATE INDEX inbox_messages_by_recipient ON inbox_messages (recipient_id, id DESC);

-- The delivery log: one row per event × recipient × channel. Inbox rows are 'sent' when
-- written; webhook rows are 'pending' until the delivery worker sends them (or parks them
-- as 'dead' after the last scheduled attempt: kept and replayable, never dropped).
CREATE TABLE deliveries (
    id              bigserial PRIMARY KEY,
    event_id        uuid NOT NULL,
    case_id         uuid NOT NULL,
    type            text NOT NULL,
    recipient_id    text NOT NULL REFERENCES recipients (id),
    channel         text NOT NULL CHECK (channel IN ('inbox', 'webhook')),
    status          text NOT NULL CHECK (status IN ('pending', 'sent', 'dead')),
    attempts        int NOT NULL DEFAULT 0,
    last_error      text,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    payload         jsonb NOT NULL,
    replays         int NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz,
    UNIQUE (event_id, recipient_id, channel)
);
-- The worker only looks at what is pending: the index stays as small as the backlog.
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_by_case ON deliveries (case_id);
CREATE INDEX deliveries_by_recipient ON deliveries (recipient_id, id DESC);
CREATE INDEX deliveries_dead ON deliveries (id) WHERE status = 'dead';
