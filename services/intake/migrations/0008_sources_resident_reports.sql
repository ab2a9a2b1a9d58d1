-- Issue 16: where every case came from (案件来源), the 12345 hotline's tickets, residents'
-- own reports (群众上报, checked on site by the grid worker before they enter the loop), and
-- positions sent in a Chinese map app's coordinate system.
ALTER TABLE cases ADD COLUMN source text NOT NULL DEFAULT 'grid_patrol'
    CHECK (source IN ('grid_patrol', 'resident', 'hotline', 'wechat_group', 'proactive'));
CREATE INDEX cases_source ON cases (source, reported_at);
-- What the client sent when it declared GCJ-02 or BD-09 ({"coord_system", "lat", "lon"});
-- lat/lon keep the WGS-84 point the case was placed by.
ALTER TABLE cases ADD COLUMN position_sent jsonb;

-- 12345 接诉即办: one case per hotline ticket (importing the same ticket again finds it).
CREATE TABLE hotline_tickets (
    ticket_no     text PRIMARY KEY,
    case_id       uuid NOT NULL UNIQUE REFERENCES cases (id) DEFERRABLE INITIALLY DEFERRED,
    request_hash  text NOT NULL,
    caller        text,              -- the caller's name as the hotline gave it
    caller_contact text,             -- masked (138****5678): the hotline keeps the number
    received_at   timestamptz NOT NULL,  -- when the hotline took the call
    imported_by   text NOT NULL,
    imported_at   timestamptz NOT NULL
);

-- 群众上报: a resident's report without an account. The case waits (to_verify, 待核实) for
-- the grid worker's on-site check: accepted, it enters the loop; dismissed, it is closed
-- with the reason (不予受理). The receipt (a random token) lets the resident, and only him,
-- read his own request back; of his address, device and e-mail only hashes are kept, to
-- count his reports for the rate limit.
CREATE TABLE resident_reports (
    case_id        uuid PRIMARY KEY REFERENCES cases (id) DEFERRABLE INITIALLY DEFERRED,
    receipt        text NOT NULL UNIQUE,  -- the resident's token to follow his request
    client_key     text NOT NULL,
    device_key     text,
    email_key      text,
    contact        text,             -- masked phone or e-mail, for the grid worker's call back
    received_at    timestamptz NOT NULL,
    state          text NOT NULL DEFAULT 'pending'
                   CHECK (state IN ('pending', 'accepted', 'dismissed')),
    reason         text CHECK (reason IN ('duplicate', 'not_found', 'not_public', 'resolved',
                                          'other')),
    duplicate_of   uuid REFERENCES cases (id),
    note           text,
    decided_by     text,
    decided_by_name text,
    decided_at     timestamptz,
    CHECK ((state = 'dismissed') = (reason IS NOT NULL)),
    CHECK ((state = 'pending') = (decided_at IS NULL))
);
CREATE INDEX resident_reports_client ON resident_reports (client_key, received_at);
CREATE INDEX resident_reports_device ON resident_reports (device_key, received_at)
    WHERE device_key IS NOT NULL;
CREATE INDEX resident_reports_email ON resident_reports (email_key, received_at)
    WHERE email_key IS NOT NULL;
CREATE INDEX resident_reports_pending ON resident_reports (received_at) WHERE state = 'pending';

-- A dismissed resident report is closed with resolution 'dismissed' (不予受理).
ALTER TABLE cases DROP CONSTRAINT cases_resolution_check;
ALTER TABLE cases ADD CONSTRAINT cases_resolution_check
    CHECK (resolution IN ('verified', 'on_spot', 'merged', 'dismissed'));
