-- A delivery taken by a worker names it (claimed_by): when that worker's process is gone
-- (shared.liveness: its session lock is dropped with it), another worker sends the delivery
-- at once instead of after the claim's lease (delivery_lease_seconds, 120 s by default).
ALTER TABLE deliveries ADD COLUMN claimed_by text;
CREATE INDEX deliveries_claimed ON deliveries (claimed_by)
    WHERE status = 'pending' AND claimed_by IS NOT NULL;
