-- Departments that receive dispatches: 职能部门, 驻区单位, 物业企业, 志愿服务队.
CREATE TABLE departments (
    id    text PRIMARY KEY,
    name  text NOT NULL,
    kind  text NOT NULL CHECK (kind IN ('functional', 'co_building', 'property', 'volunteer'))
);

-- The category catalogue. Dispatch owns it; intake keeps a replica (GET /categories).
CREATE TABLE categories (
    code        text PRIMARY KEY,
    name        text NOT NULL,
    parent_code text REFERENCES categories (code)
);

-- Category × area → lead department. The deepest area prefix covering a case wins.
CREATE TABLE routing_rules (
    id            serial PRIMARY KEY,
    category_code text NOT NULL REFERENCES categories (code),
    area_prefix   text NOT NULL CHECK (area_prefix ~ '^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$'),
    department_id text NOT NULL REFERENCES departments (id),
    created_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (category_code, area_prefix)
);

-- One department's part in one case: 派单 → 报到 (signed_for) → 办结 (resolved).
-- The case facts are copied from the whistle: dispatch never reads intake's database.
CREATE TABLE assignments (
    id            uuid PRIMARY KEY,
    case_id       uuid NOT NULL,
    case_no       text NOT NULL,
    department_id text NOT NULL REFERENCES departments (id),
    role          text NOT NULL CHECK (role IN ('lead', 'co')),
    state         text NOT NULL CHECK (state IN ('dispatched', 'signed_for', 'resolved')),
    -- The rule that decided it (NULL when the community named the department). No foreign
    -- key: this is history, and ``reason`` names the rule in words.
    rule_id       int,
    reason        text NOT NULL,
    area_path     text NOT NULL,
    category      text NOT NULL,
    priority      text NOT NULL CHECK (priority IN ('urgent', 'normal', 'minor')),
    description   text NOT NULL,
    note          text,
    result        text,
    dispatched_at timestamptz NOT NULL,
    signed_for_at timestamptz,
    resolved_at   timestamptz,
    updated_at    timestamptz NOT NULL,
    CHECK (state <> 'resolved' OR (result IS NOT NULL AND resolved_at IS NOT NULL))
);
-- A case is never open twice at the same department (a redelivered or repeated whistle).
CREATE UNIQUE INDEX assignments_one_open_per_department
    ON assignments (case_id, department_id) WHERE state IN ('dispatched', 'signed_for');
CREATE INDEX assignments_inbox ON assignments (department_id, state, dispatched_at);
CREATE INDEX assignments_case ON assignments (case_id);

-- Whistled cases no rule could route: they wait for the community / street command to
-- dispatch them by hand (人工派单). ``cleared_at`` is set once the case was dispatched.
CREATE TABLE manual_dispatch (
    case_id     uuid PRIMARY KEY,
    case_no     text NOT NULL,
    area_path   text NOT NULL,
    category    text NOT NULL,
    priority    text NOT NULL CHECK (priority IN ('urgent', 'normal', 'minor')),
    description text NOT NULL,
    departments text[] NOT NULL DEFAULT '{}',
    note        text,
    reason      text NOT NULL,
    whistled_at timestamptz NOT NULL,
    queued_at   timestamptz NOT NULL,
    cleared_at  timestamptz
);
CREATE INDEX manual_dispatch_waiting ON manual_dispatch (queued_at) WHERE cleared_at IS NULL;
