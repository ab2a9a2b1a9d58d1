-- An urging (督办) sent again with the same Idempotency-Key (a retry after a lost answer)
-- answers with the urgings made the first time instead of urging again.
CREATE TABLE urge_requests (
    subject       text NOT NULL,          -- who urged (the token's subject)
    key           text NOT NULL,
    request_hash  text NOT NULL,          -- case, note and department: the same request?
    case_id       uuid NOT NULL,
    event_ids     uuid[] NOT NULL,        -- the case.urged events it wrote
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (subject, key)
);
