-- Verified inbound deliveries: the raw body as received, the headers kept, and where it came from.
CREATE TABLE events (
  seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  txid xid8 NOT NULL DEFAULT pg_current_xact_id(),
  id text NOT NULL UNIQUE,
  source_id text NOT NULL,
  type text NOT NULL,
  delivery_id text,
  dedup_key text NOT NULL,
  headers jsonb NOT NULL,
  body bytea,
  received_at timestamptz NOT NULL
);
CREATE INDEX events_txid ON events (txid);
CREATE INDEX events_source_received ON events (source_id, received_at);

-- One live row per source and dedup key: the unique constraint is what makes a delivery count once.
CREATE TABLE event_dedup (
  source_id text NOT NULL,
  dedup_key text NOT NULL,
  event_id text NOT NULL,
  expires_at timestamptz NOT NULL,
  PRIMARY KEY (source_id, dedup_key)
);
CREATE INDEX event_dedup_expires ON event_dedup (expires_at);

-- The hot queue: jobs committed in the same transaction as their event.
CREATE TABLE jobs (
  seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  txid xid8 NOT NULL DEFAULT pg_current_xact_id(),
  id text NOT NULL UNIQUE,
  event_id text NOT NULL,
  kind text NOT NULL,
  status text NOT NULL CHECK (status IN ('ready', 'running', 'done', 'dead')),
  run_at timestamptz NOT NULL,
  attempts integer NOT NULL DEFAULT 0,
  lease_until timestamptz,
  last_error text,
  created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL
);
CREATE INDEX jobs_ready ON jobs (status, run_at);
CREATE INDEX jobs_event ON jobs (event_id);
