-- Verified inbound deliveries: the raw body as received, the headers kept, and where it came from.
CREATE TABLE events (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  source_id TEXT NOT NULL,
  type TEXT NOT NULL,
  delivery_id TEXT,
  dedup_key TEXT NOT NULL,
  headers TEXT NOT NULL,
  body BLOB,
  received_at INTEGER NOT NULL
) STRICT;
CREATE INDEX events_source_received ON events (source_id, received_at);

-- One live row per source and dedup key: the unique constraint is what makes a delivery count once.
CREATE TABLE event_dedup (
  source_id TEXT NOT NULL,
  dedup_key TEXT NOT NULL,
  event_id TEXT NOT NULL,
  expires_at INTEGER NOT NULL,
  PRIMARY KEY (source_id, dedup_key)
) STRICT;
CREATE INDEX event_dedup_expires ON event_dedup (expires_at);

-- The hot queue: jobs committed in the same transaction as their event.
CREATE TABLE jobs (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  event_id TEXT NOT NULL,
  kind TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('ready', 'running', 'done', 'dead')),
  run_at INTEGER NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  lease_until INTEGER,
  last_error TEXT,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
) STRICT;
CREATE INDEX jobs_ready ON jobs (status, run_at);
CREATE INDEX jobs_event ON jobs (event_id);
