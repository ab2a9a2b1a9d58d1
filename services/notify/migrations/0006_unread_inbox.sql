-- Issue 14: a recipient's unread messages, newest first, without walking the read ones (nearly
-- all of them, over time).
CREATE INDEX inbox_messages_unread ON inbox_messages (recipient_id, id DESC) WHERE read_at IS NULL;
