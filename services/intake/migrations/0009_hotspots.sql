-- Issue 16: 未诉先办 — hotspots (one category's cases clustering in one grid over a few
-- weeks) are computed from the cases on every read; what a community decided about one is
-- kept here. The id names the hotspot (grid.category.period start), so the primary key
-- makes a double click one decision, and UNIQUE (case_id) one proactive case per decision.
CREATE TABLE hotspot_decisions (
    id              text PRIMARY KEY,
    grid_code       text NOT NULL REFERENCES areas (code),
    area_path       text NOT NULL,
    category        text NOT NULL,
    period_start    timestamptz NOT NULL,
    decision        text NOT NULL CHECK (decision IN ('accepted', 'dismissed')),
    case_id         uuid UNIQUE REFERENCES cases (id) DEFERRABLE INITIALLY DEFERRED,
    reason          text CHECK (reason IN ('already_handled', 'seasonal', 'not_actionable', 'other')),
    note            text,
    -- the hotspot as it was when decided (case ids and numbers, weekly counts, …)
    evidence        jsonb NOT NULL,
    decided_by      text NOT NULL,
    decided_by_name text NOT NULL,
    decided_at      timestamptz NOT NULL,
    CHECK ((decision = 'accepted') = (case_id IS NOT NULL)),
    CHECK ((decision = 'dismissed') = (reason IS NOT NULL))
);
-- The last decision on a grid's category (its next period starts there).
CREATE INDEX hotspot_decisions_grid_category ON hotspot_decisions (grid_code, category, decided_at);
CREATE INDEX hotspot_decisions_area ON hotspot_decisions (area_path text_pattern_ops, decided_at);

-- Detection reads a subtree's cases since a date; accepting one grid's cases of a category.
CREATE INDEX cases_reported_at ON cases (reported_at);
CREATE INDEX cases_grid_category_reported ON cases (grid_code, category, reported_at);
