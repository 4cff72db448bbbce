-- Inbound endpoints. Secrets are stored sealed (AES-256-GCM under a key derived from the root secret).
CREATE TABLE sources (
  seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  txid xid8 NOT NULL DEFAULT pg_current_xact_id(),
  id text NOT NULL UNIQUE,
  slug text UNIQUE,
  name text NOT NULL,
  type text NOT NULL,
  secret_sealed text NOT NULL,
  previous_secret_sealed text,
  previous_secret_expires_at timestamptz,
  dedup_window_seconds integer NOT NULL,
  body_limit bigint NOT NULL,
  rate_limit_policy text,
  rate_limit_mode text NOT NULL CHECK (rate_limit_mode IN ('reject', 'throttle')),
  generic jsonb,
  metadata jsonb NOT NULL,
  created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL
);
CREATE INDEX sources_txid ON sources (txid);
