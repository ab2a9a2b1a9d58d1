-- What each consumer sent to the dead-letter topic, kept in its own database too: the
-- embedded broker keeps its topics in memory, so a broker that dies takes the dead-letter
-- topic with it; the stack's supervisor publishes these copies again to the new broker
-- (stack/supervisor.py). The copy is the one published (truncated when oversize; the full
-- message is then in parked_events), with its dlt-* headers.
CREATE TABLE dead_letter_copies (
    id              bigserial PRIMARY KEY,
    consumer        text NOT NULL,
    key             bytea,
    value           bytea NOT NULL,
    headers         jsonb NOT NULL,
    dead_lettered_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX dead_letter_copies_at ON dead_letter_copies (dead_lettered_at);
