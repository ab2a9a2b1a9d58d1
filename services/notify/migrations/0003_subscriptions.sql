-- Subscriptions: a recipient hears the events it matches, besides the defaults (a department
-- its dispatches and urgings, the reporter's side resolution and closure, supervisors
-- overdue cases and escalations in their area). An empty condition matches anything.
CREATE TABLE subscriptions (
    id            bigserial PRIMARY KEY,
    recipient_id  text NOT NULL REFERENCES recipients (id) ON DELETE CASCADE,
    event_types   text[] NOT NULL CHECK (cardinality(event_types) > 0),
    area_path     text,                               -- the subtree: itself and below
    department_id text,
    categories    text[] NOT NULL DEFAULT '{}',       -- a 大类 (C01) covers its 小类 (C0101)
    priorities    text[] NOT NULL DEFAULT '{}',
    created_by    text,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX subscriptions_by_type ON subscriptions USING gin (event_types);
CREATE INDEX subscriptions_by_recipient ON subscriptions (recipient_id);
