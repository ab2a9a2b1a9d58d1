-- Recipients: the reporter's side (community staff, grid workers) joins departments and
-- supervisors; each recipient has preferences: channels in order (the in-app inbox is always
-- on and not listed), a language, and quiet hours in Beijing time (urgent cases ignore them).
ALTER TABLE recipients DROP CONSTRAINT recipients_kind_check;
ALTER TABLE recipients ADD CONSTRAINT recipients_kind_check
    CHECK (kind IN ('department', 'supervisor', 'community', 'grid_worker'));
ALTER TABLE recipients ADD CONSTRAINT recipients_area_kinds_have_area
    CHECK (kind NOT IN ('community', 'grid_worker') OR area_path IS NOT NULL);

-- channels: [{"kind": "wecom", "settings": {...}}, ...], tried in this order. The settings
-- hold secrets (robot keys, signing secrets, SMTP passwords): the API never shows them.
ALTER TABLE recipients
    ADD COLUMN channels    jsonb NOT NULL DEFAULT '[]'::jsonb
        CHECK (jsonb_typeof(channels) = 'array'),
    ADD COLUMN locale      text NOT NULL DEFAULT 'zh-CN' CHECK (locale IN ('zh-CN', 'en')),
    ADD COLUMN quiet_start time,
    ADD COLUMN quiet_end   time,
    ADD CONSTRAINT recipients_quiet_hours CHECK ((quiet_start IS NULL) = (quiet_end IS NULL));

DROP INDEX recipients_area;
CREATE INDEX recipients_area ON recipients (area_path) WHERE kind <> 'department';
