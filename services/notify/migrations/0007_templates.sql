-- Issue 15: the message templates operators replaced, one per notice kind × locale. Where a
-- kind has none, the shipped one stands (services/notify/domain/templates.toml); resetting a
-- template deletes its row.
CREATE TABLE message_templates (
    kind       text NOT NULL,                 -- the event type: case.dispatched, case.overdue, …
    locale     text NOT NULL CHECK (locale IN ('zh-CN', 'en')),
    title      text NOT NULL,
    body       text NOT NULL,
    updated_by text,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kind, locale)
);
-- One row, moved by every change (in its transaction): the delivery path re-reads the
-- templates when the revision it read last is no longer the current one.
CREATE TABLE message_template_revision (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    revision bigint NOT NULL
);
INSERT INTO message_template_revision (only_row, revision) VALUES (true, 0);
