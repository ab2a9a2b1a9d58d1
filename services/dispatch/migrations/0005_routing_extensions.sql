-- Issue 5: the catalogue's default responsible kind of department, rules with co-handlers
-- (协办), liaison units (包联), what chose each assignment, the departments named in a
-- whistle (kept for re-routing after 退单), departments' after-photos, extension requests.

-- A category's own default responsible kind; NULL inherits its 大类's.
ALTER TABLE categories ADD COLUMN department_kind text CHECK (
    department_kind IN ('functional', 'street_office', 'co_building', 'property', 'volunteer'));

-- Co-handlers convened with the lead. Departments are checked when a rule is saved.
ALTER TABLE routing_rules ADD COLUMN co_department_ids text[] NOT NULL DEFAULT '{}';

-- A community's liaison units (包联单位, "四包一"), in order: the fallback when no rule fits.
CREATE TABLE liaison_units (
    area_prefix   text NOT NULL CHECK (area_prefix ~ '^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$'),
    department_id text NOT NULL REFERENCES departments (id),
    position      int  NOT NULL CHECK (position >= 1),
    PRIMARY KEY (area_prefix, department_id),
    UNIQUE (area_prefix, position)
);

-- What chose the department (kept for disputes, with ``reason`` and ``rule_id``).
ALTER TABLE assignments ADD COLUMN basis text NOT NULL DEFAULT 'rule' CHECK (
    basis IN ('named', 'rule', 'area_default', 'liaison', 'manual', 'transfer', 'rework'));
UPDATE assignments SET basis = CASE
    WHEN rework_of IS NOT NULL THEN 'rework'
    WHEN reason LIKE '由%转办：%' THEN 'transfer'
    WHEN rule_id IS NULL THEN 'named'
    ELSE 'rule' END;
-- The after-photos (整改后) the department cited when it resolved the assignment.
ALTER TABLE assignments ADD COLUMN photo_ids uuid[] NOT NULL DEFAULT '{}';

-- The latest whistle of each case: the departments the community named take precedence
-- when the case is routed again after a rejection.
CREATE TABLE case_whistles (
    case_id     uuid PRIMARY KEY,
    departments text[] NOT NULL DEFAULT '{}',
    whistled_at timestamptz NOT NULL
);

-- Photos intake announced (case.photo_added); a resolution may cite the after-photos its
-- department uploaded.
CREATE TABLE case_photos (
    photo_id      uuid PRIMARY KEY,
    case_id       uuid NOT NULL,
    kind          text NOT NULL,
    department_id text,
    added_at      timestamptz NOT NULL
);
CREATE INDEX case_photos_of ON case_photos (case_id, department_id);

-- 延期申请: a department asks for more working days; a supervisor approves or refuses.
CREATE TABLE extension_requests (
    id            uuid PRIMARY KEY,
    assignment_id uuid NOT NULL REFERENCES assignments (id),
    case_id       uuid NOT NULL,
    department_id text NOT NULL REFERENCES departments (id),
    days          int  NOT NULL CHECK (days BETWEEN 1 AND 30),
    reason        text NOT NULL CHECK (btrim(reason) <> ''),
    state         text NOT NULL CHECK (state IN ('pending', 'approved', 'refused')),
    requested_by  text NOT NULL,
    requested_at  timestamptz NOT NULL,
    decided_by    text,
    decided_at    timestamptz,
    granted_days  int CHECK (granted_days BETWEEN 0 AND days),
    comment       text,
    CHECK (state = 'pending' OR (decided_by IS NOT NULL AND decided_at IS NOT NULL
                                 AND granted_days IS NOT NULL)),
    CHECK (state <> 'refused' OR comment IS NOT NULL)
);
CREATE UNIQUE INDEX extension_requests_one_pending ON extension_requests (assignment_id)
    WHERE state = 'pending';
CREATE INDEX extension_requests_by_state ON extension_requests (state, requested_at);
