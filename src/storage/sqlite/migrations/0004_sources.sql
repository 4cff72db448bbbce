-- Inbound endpoints. Secrets are stored sealed (AES-256-GCM under a key derived from the root secret).
CREATE TABLE sources (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  slug TEXT UNIQUE,
  name TEXT NOT NULL,
  type TEXT NOT NULL,
  secret_sealed TEXT NOT NULL,
  previous_secret_sealed TEXT,
  previous_secret_expires_at INTEGER,
  dedup_window_seconds INTEGER NOT NULL,
  body_limit INTEGER NOT NULL,
  rate_limit_policy TEXT,
  rate_limit_mode TEXT NOT NULL CHECK (rate_limit_mode IN ('reject', 'throttle')),
  generic TEXT,
  metadata TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
) STRICT;
