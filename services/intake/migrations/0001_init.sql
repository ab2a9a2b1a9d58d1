-- The jurisdiction tree: district → street → community → grid.
CREATE TABLE areas (
    code        text PRIMARY KEY,
    name        text NOT NULL,
    level       text NOT NULL CHECK (level IN ('district', 'street', 'community', 'grid')),
    parent_code text REFERENCES areas (code),
    path        text NOT NULL UNIQUE
);

-- Replica of dispatch's category catalogue (dispatch is the one source of truth).
CREATE TABLE categories (
    code        text PRIMARY KEY,
    name        text NOT NULL,
    parent_code text,
    synced_at   timestamptz NOT NULL DEFAULT now()
);

CREATE SEQUENCE case_no_seq;

CREATE TABLE cases (
    id           uuid PRIMARY KEY,
    case_no      text NOT NULL UNIQUE,
    grid_code    text NOT NULL REFERENCES areas (code),
    area_path    text NOT NULL,
    category     text NOT NULL,
    description  text NOT NULL,
    priority     text NOT NULL CHECK (priority IN ('urgent', 'normal', 'minor')),
    lat          double precision,
    lon          double precision,
    address      text,
    reporter     text NOT NULL,
    status       text NOT NULL,
    departments  text[] NOT NULL DEFAULT '{}',
    reported_at  timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,
    closed_at    timestamptz
);
CREATE INDEX cases_area_path ON cases (area_path text_pattern_ops);
CREATE INDEX cases_status ON cases (status);

-- Idempotency-Key: a retried report returns the case the first attempt created.
CREATE TABLE idempotency_keys (
    key          text PRIMARY KEY,
    request_hash text NOT NULL,
    case_id      uuid NOT NULL REFERENCES cases (id) DEFERRABLE INITIALLY DEFERRED,
    created_at   timestamptz NOT NULL DEFAULT now()
);
