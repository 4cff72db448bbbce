-- Subscribers' HTTP endpoints. Secrets are stored sealed, as source secrets are.
CREATE TABLE endpoints (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  url TEXT NOT NULL,
  description TEXT NOT NULL,
  event_types TEXT NOT NULL,
  source_ids TEXT NOT NULL,
  headers TEXT NOT NULL,
  rate_limit_per_second INTEGER,
  timeout_ms INTEGER NOT NULL,
  retry_schedule TEXT,
  enabled INTEGER NOT NULL,
  disabled_reason TEXT,
  metadata TEXT NOT NULL,
  secret_sealed TEXT NOT NULL,
  previous_secret_sealed TEXT,
  previous_secret_expires_at INTEGER,
  consecutive_failures INTEGER NOT NULL DEFAULT 0,
  failing_since INTEGER,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
) STRICT;

-- Our users' own events, published through the API: the outbox.
CREATE TABLE messages (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  event_type TEXT NOT NULL,
  payload BLOB NOT NULL,
  created_at INTEGER NOT NULL
) STRICT;

-- One message or inbound event on its way to one endpoint; also the delivery queue.
CREATE TABLE deliveries (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  endpoint_id TEXT NOT NULL,
  subject_kind TEXT NOT NULL CHECK (subject_kind IN ('message', 'event')),
  subject_id TEXT NOT NULL,
  -- What routed it (the processing job, or the message itself): routing twice adds nothing.
  cause_id TEXT NOT NULL,
  event_type TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('pending', 'sending', 'succeeded', 'dead')),
  attempts INTEGER NOT NULL DEFAULT 0,
  round_attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER NOT NULL,
  lease_until INTEGER,
  lease_token TEXT,
  last_error TEXT,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  UNIQUE (endpoint_id, subject_id, cause_id)
) STRICT;
CREATE INDEX deliveries_due ON deliveries (status, next_attempt_at);
CREATE INDEX deliveries_subject ON deliveries (subject_id);
CREATE INDEX deliveries_endpoint ON deliveries (endpoint_id, status, created_at);

-- Every attempt: when, what came back, how long it took.
CREATE TABLE delivery_attempts (
  delivery_id TEXT NOT NULL,
  attempt INTEGER NOT NULL,
  started_at INTEGER NOT NULL,
  finished_at INTEGER NOT NULL,
  status_code INTEGER,
  latency_ms INTEGER NOT NULL,
  response_body TEXT,
  error TEXT,
  outcome TEXT NOT NULL CHECK (outcome IN ('succeeded', 'retry', 'dead')),
  PRIMARY KEY (delivery_id, attempt)
) STRICT;
