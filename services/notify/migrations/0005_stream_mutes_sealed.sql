-- The live stream (SSE): each recipient's inbox messages are numbered 1, 2, 3… in the order
-- they commit, so that a browser resuming with Last-Event-ID misses nothing. The number is
-- taken from the recipient's row in inbox_sequences, which the inserting transaction keeps
-- locked until it commits: message n+1 cannot be numbered before message n is committed (or
-- rolled back, and its number reused). A bigserial id cannot promise that: ids are handed
-- out at insert, and a later id may commit first. Numbers may skip (an insert that meets its
-- unique key consumes one), never go back.
CREATE TABLE inbox_sequences (
    recipient_id text PRIMARY KEY REFERENCES recipients (id) ON DELETE CASCADE,
    last_seq     bigint NOT NULL
);

ALTER TABLE inbox_messages ADD COLUMN seq bigint;
UPDATE inbox_messages m SET seq = n.seq
  FROM (SELECT id, row_number() OVER (PARTITION BY recipient_id ORDER BY id) AS seq
          FROM inbox_messages) n
 WHERE m.id = n.id;
INSERT INTO inbox_sequences (recipient_id, last_seq)
SELECT recipient_id, max(seq) FROM inbox_messages GROUP BY recipient_id;
ALTER TABLE inbox_messages ALTER COLUMN seq SET NOT NULL;
ALTER TABLE inbox_messages ADD CONSTRAINT inbox_messages_seq UNIQUE (recipient_id, seq);

-- Every insert is numbered here, whoever writes it; the stream is woken at commit.
CREATE FUNCTION inbox_messages_number() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO inbox_sequences AS s (recipient_id, last_seq) VALUES (NEW.recipient_id, 1)
    ON CONFLICT (recipient_id) DO UPDATE SET last_seq = s.last_seq + 1
    RETURNING last_seq INTO NEW.seq;
    RETURN NEW;
END $$;
CREATE TRIGGER inbox_messages_number BEFORE INSERT ON inbox_messages
    FOR EACH ROW EXECUTE FUNCTION inbox_messages_number();

CREATE FUNCTION inbox_messages_announce() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('inbox_messages', NEW.recipient_id);
    RETURN NULL;
END $$;
CREATE TRIGGER inbox_messages_announce AFTER INSERT ON inbox_messages
    FOR EACH ROW EXECUTE FUNCTION inbox_messages_announce();

-- A recipient may opt out of default events (not of those it must act on: see the domain);
-- what it subscribed to explicitly it still hears.
ALTER TABLE recipients ADD COLUMN muted_events text[] NOT NULL DEFAULT '{}';

-- Channel settings and webhook secrets are sealed (Fernet, keys from CHANNEL_SECRETS_KEYS):
-- a channel is stored as {"kind", "sealed": token} instead of {"kind", "settings": {...}},
-- a webhook secret as 'fernet:' || token. The service seals what is still plain (and re-seals
-- what an older key sealed) when it starts: SQL cannot, it has no key.
COMMENT ON COLUMN recipients.channels IS
    '[{"kind", "sealed": Fernet token of the settings JSON}] (plain "settings" until sealed)';
COMMENT ON COLUMN recipients.webhook_secret IS 'fernet:<token> (plain until sealed)';
