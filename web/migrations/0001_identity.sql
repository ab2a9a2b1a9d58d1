-- Users of the console (登录用户) and their refresh tokens.
-- A user's role, jurisdiction, department and grids are assigned here by the administrator;
-- every access token minted at sign-in or refresh carries them as they stand now.
CREATE TABLE users (
    username      text PRIMARY KEY,
    name          text NOT NULL,
    role          text NOT NULL,
    area          text NOT NULL,
    department_id text,
    grids         text[] NOT NULL DEFAULT '{}',
    password_hash text NOT NULL,
    disabled      boolean NOT NULL DEFAULT false,
    failed_logins int NOT NULL DEFAULT 0,
    locked_until  timestamptz,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    CHECK (role <> 'department' OR department_id IS NOT NULL),
    CHECK (role <> 'grid_worker' OR cardinality(grids) > 0)
);

-- Refresh tokens are kept as SHA-256 hashes. Each use replaces the token with a new one of
-- the same family; a token used twice (stolen and replayed) revokes its whole family.
CREATE TABLE refresh_tokens (
    token_hash bytea PRIMARY KEY,
    username   text NOT NULL REFERENCES users (username) ON DELETE CASCADE,
    family     uuid NOT NULL,
    issued_at  timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    used_at    timestamptz,
    revoked_at timestamptz
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family);
CREATE INDEX refresh_tokens_user ON refresh_tokens (username);
