-- Issue 16: when the case will actually be resolved (预计办结时间), kept from tracking's
-- case.resolution_forecast (tracking owns the forecast): the expected instant, its range, what
-- it rests on and when tracking made it (an older forecast arriving late changes nothing).
ALTER TABLE cases ADD COLUMN expected_resolution_at timestamptz;
ALTER TABLE cases ADD COLUMN expected_earliest timestamptz;
ALTER TABLE cases ADD COLUMN expected_latest timestamptz;
ALTER TABLE cases ADD COLUMN expected_basis text;
ALTER TABLE cases ADD COLUMN expected_as_of timestamptz;
