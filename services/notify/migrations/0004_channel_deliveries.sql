-- Deliveries through every channel: one row per event × recipient × channel (unchanged
-- unique key). A delivery that gives its channel up is 'dead' (kept, replayable) and the
-- recipient's next channel gets a delivery of its own (fallback_from). Messages that a
-- robot's rate limit would drop are sent together in one digest, carried by one delivery
-- (digest_id on the others, status 'digested').
ALTER TABLE deliveries DROP CONSTRAINT deliveries_channel_check;
ALTER TABLE deliveries ADD CONSTRAINT deliveries_channel_check
    CHECK (channel IN ('inbox', 'webhook', 'wecom', 'dingtalk', 'feishu', 'email', 'sms'));
ALTER TABLE deliveries DROP CONSTRAINT deliveries_status_check;
ALTER TABLE deliveries ADD CONSTRAINT deliveries_status_check
    CHECK (status IN ('pending', 'sent', 'dead', 'digested'));
ALTER TABLE deliveries
    ADD COLUMN position      int,     -- the channel's place in the recipient's list when queued
    ADD COLUMN urgent        boolean NOT NULL DEFAULT false,
    ADD COLUMN fallback_from bigint REFERENCES deliveries (id),
    ADD COLUMN digest_id     bigint REFERENCES deliveries (id),
    ADD COLUMN last_code     text,    -- the last attempt's short outcome: HTTP 503, errcode 45009
    ADD COLUMN destination   text;    -- a robot's identity (a hash of its URL): its rate window
CREATE INDEX deliveries_robot_window ON deliveries (destination, sent_at)
    WHERE destination IS NOT NULL;
