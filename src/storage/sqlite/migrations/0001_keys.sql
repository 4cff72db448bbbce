-- API keys. `seq` orders lists: SQLite serialises writers, so seq order is commit order.
CREATE TABLE api_keys (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  name TEXT NOT NULL,
  customer TEXT,
  metadata TEXT NOT NULL,
  scopes TEXT NOT NULL,
  prefix TEXT NOT NULL,
  created_by TEXT,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  expires_at INTEGER,
  revoked_at INTEGER,
  rotated_at INTEGER
) STRICT;

-- Accepted secrets of a key, stored only as keyed hashes. After a rotation the
-- previous secret stays here until its expires_at.
CREATE TABLE api_key_secrets (
  hash TEXT PRIMARY KEY,
  key_id TEXT NOT NULL REFERENCES api_keys (id),
  created_at INTEGER NOT NULL,
  expires_at INTEGER
) STRICT;
CREATE INDEX api_key_secrets_key_id ON api_key_secrets (key_id);

-- Facts set once per store, such as when it was bootstrapped.
CREATE TABLE store_meta (
  name TEXT PRIMARY KEY,
  value TEXT NOT NULL
) STRICT;

CREATE TABLE idempotency_records (
  key_id TEXT NOT NULL,
  idempotency_key TEXT NOT NULL,
  method TEXT NOT NULL,
  path TEXT NOT NULL,
  request_hash TEXT NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('in-flight', 'completed', 'completed-secret')),
  response TEXT,
  resource_id TEXT,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (key_id, idempotency_key, method, path)
) STRICT;
CREATE INDEX idempotency_records_created_at ON idempotency_records (created_at);
