-- API keys. Lists page by seq; txid (the writing transaction) lets a cursor find
-- rows whose seq is below the cursor but which committed after the page was read.
CREATE TABLE api_keys (
  seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  txid xid8 NOT NULL DEFAULT pg_current_xact_id(),
  id text NOT NULL UNIQUE,
  name text NOT NULL,
  customer text,
  metadata jsonb NOT NULL,
  scopes text[] NOT NULL,
  prefix text NOT NULL,
  created_by text,
  created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL,
  expires_at timestamptz,
  revoked_at timestamptz,
  rotated_at timestamptz
);
CREATE INDEX api_keys_txid ON api_keys (txid);

-- Accepted secrets of a key, stored only as keyed hashes. After a rotation the
-- previous secret stays here until its expires_at.
CREATE TABLE api_key_secrets (
  hash text PRIMARY KEY,
  key_id text NOT NULL REFERENCES api_keys (id),
  created_at timestamptz NOT NULL,
  expires_at timestamptz
);
CREATE INDEX api_key_secrets_key_id ON api_key_secrets (key_id);

-- Facts set once per store, such as when it was bootstrapped.
CREATE TABLE store_meta (
  name text PRIMARY KEY,
  value text NOT NULL
);

CREATE TABLE idempotency_records (
  key_id text NOT NULL,
  idempotency_key text NOT NULL,
  method text NOT NULL,
  path text NOT NULL,
  request_hash text NOT NULL,
  state text NOT NULL CHECK (state IN ('in-flight', 'completed', 'completed-secret')),
  response jsonb,
  resource_id text,
  created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL,
  PRIMARY KEY (key_id, idempotency_key, method, path)
);
CREATE INDEX idempotency_records_created_at ON idempotency_records (created_at);
