-- Issue 4: photos of a case — 整改前 (before) at report, 整改后 (after) at resolution.
-- The bytes live in intake's own database so every replica can serve them; object storage
-- (bytes there, this row keeping the key and checksum) is the production step up.
CREATE TABLE photos (
    id            uuid PRIMARY KEY,
    case_id       uuid NOT NULL REFERENCES cases (id),
    kind          text NOT NULL CHECK (kind IN ('before', 'after')),
    content_type  text NOT NULL,
    size_bytes    integer NOT NULL CHECK (size_bytes > 0),
    sha256        text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    width         integer NOT NULL CHECK (width > 0),
    height        integer NOT NULL CHECK (height > 0),
    data          bytea NOT NULL,
    uploaded_by   text NOT NULL,
    uploaded_at   timestamptz NOT NULL,
    -- The same picture sent twice for the same case and kind (a retry over a flaky mobile
    -- network) is one photo.
    UNIQUE (case_id, kind, sha256)
);
-- Photos are already compressed: store them out of line without trying to compress again.
ALTER TABLE photos ALTER COLUMN data SET STORAGE EXTERNAL;
