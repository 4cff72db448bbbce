-- The claim reads due deliveries and expired leases through these partial indexes, each in
-- the order it takes them (an index entry ends with the rowid, seq), and stops at its limit.
-- A delivery leaves an index when its status changes, so neither grows with the history of
-- finished deliveries. They replace (status, next_attempt_at), which held every delivery.
CREATE INDEX deliveries_pending ON deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_sending ON deliveries (lease_until) WHERE status = 'sending';
DROP INDEX deliveries_due;

-- Listing an endpoint's deliveries (by status, by time) reads its entries of this index and
-- filters the status: with the status in the index, every claim and every outcome moved each
-- delivery's entry twice.
DROP INDEX deliveries_endpoint;
CREATE INDEX deliveries_endpoint ON deliveries (endpoint_id, created_at);
