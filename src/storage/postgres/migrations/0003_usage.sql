-- Monthly quota of a key, in cost units (NULL: unlimited), and where warnings start.
ALTER TABLE api_keys ADD COLUMN quota_limit bigint;
ALTER TABLE api_keys ADD COLUMN quota_soft_limit bigint;

-- The metering ledger: requests and cost units per key, route and UTC day.
CREATE TABLE usage_daily (
  key_id text NOT NULL,
  day text NOT NULL,
  route text NOT NULL,
  requests bigint NOT NULL,
  units bigint NOT NULL,
  PRIMARY KEY (key_id, day, route)
);
CREATE INDEX usage_daily_day ON usage_daily (day);

-- Batches already added to the ledger, so a retried batch is never counted twice.
CREATE TABLE usage_batches (
  id text PRIMARY KEY,
  recorded_at timestamptz NOT NULL
);
