-- Monthly quota of a key, in cost units (NULL: unlimited), and where warnings start.
ALTER TABLE api_keys ADD COLUMN quota_limit INTEGER;
ALTER TABLE api_keys ADD COLUMN quota_soft_limit INTEGER;

-- The metering ledger: requests and cost units per key, route and UTC day.
CREATE TABLE usage_daily (
  key_id TEXT NOT NULL,
  day TEXT NOT NULL,
  route TEXT NOT NULL,
  requests INTEGER NOT NULL,
  units INTEGER NOT NULL,
  PRIMARY KEY (key_id, day, route)
) STRICT;
CREATE INDEX usage_daily_day ON usage_daily (day);

-- Batches already added to the ledger, so a retried batch is never counted twice.
CREATE TABLE usage_batches (
  id TEXT PRIMARY KEY,
  recorded_at INTEGER NOT NULL
) STRICT;
