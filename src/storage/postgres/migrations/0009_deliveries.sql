-- Subscribers' HTTP endpoints. Secrets are stored sealed, as source secrets are.
CREATE TABLE endpoints (
  seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  txid xid8 NOT NULL DEFAULT pg_current_xact_id(),
  id text NOT NULL UNIQUE,
  url text NOT NULL,
  description text NOT NULL,
  event_types jsonb NOT NULL,
  source_ids jsonb NOT NULL,
  headers jsonb NOT NULL,
  rate_limit_per_second integer,
  timeout_ms integer NOT NULL,
  retry_schedule jsonb,
  enabled boolean NOT NULL,
  disabled_reason text,
  metadata jsonb NOT NULL,
  secret_sealed text NOT NULL,
  previous_secret_sealed text,
  previous_secret_expires_at timestamptz,
  consecutive_failures integer NOT NULL DEFAULT 0,
  failing_since timestamptz,
  created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL
);
CREATE INDEX endpoints_txid ON endpoints (txid);

-- Our users' own events, published through the API: the outbox.
CREATE TABLE messages (
  seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  txid xid8 NOT NULL DEFAULT pg_current_xact_id(),
  id text NOT NULL UNIQUE,
  event_type text NOT NULL,
  payload bytea NOT NULL,
  created_at timestamptz NOT NULL
);
CREATE INDEX messages_txid ON messages (txid);

-- One message or inbound event on its way to one endpoint; also the delivery queue.
CREATE TABLE deliveries (
  seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  txid xid8 NOT NULL DEFAULT pg_current_xact_id(),
  id text NOT NULL UNIQUE,
  endpoint_id text NOT NULL,
  subject_kind text NOT NULL CHECK (subject_kind IN ('message', 'event')),
  subject_id text NOT NULL,
  -- What routed it (the processing job, or the message itself): routing twice adds nothing.
  cause_id text NOT NULL,
  event_type text NOT NULL,
  status text NOT NULL CHECK (status IN ('pending', 'sending', 'succeeded', 'dead')),
  attempts integer NOT NULL DEFAULT 0,
  round_attempts integer NOT NULL DEFAULT 0,
  next_attempt_at timestamptz NOT NULL,
  lease_until timestamptz,
  lease_token text,
  last_error text,
  created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL,
  UNIQUE (endpoint_id, subject_id, cause_id)
);
CREATE INDEX deliveries_txid ON deliveries (txid);
CREATE INDEX deliveries_due ON deliveries (status, next_attempt_at);
CREATE INDEX deliveries_subject ON deliveries (subject_id);
CREATE INDEX deliveries_endpoint ON deliveries (endpoint_id, status, created_at);

-- Every attempt: when, what came back, how long it took.
CREATE TABLE delivery_attempts (
  delivery_id text NOT NULL,
  attempt integer NOT NULL,
  started_at timestamptz NOT NULL,
  finished_at timestamptz NOT NULL,
  status_code integer,
  latency_ms integer NOT NULL,
  response_body text,
  error text,
  outcome text NOT NULL CHECK (outcome IN ('succeeded', 'retry', 'dead')),
  PRIMARY KEY (delivery_id, attempt)
);
