-- Consumer groups: applications pulling events over HTTP. Sequence order is not commit
-- order here, so the cursor is (txid, seq) and a group only reads events whose
-- transaction is older than every one still running: none can commit behind the cursor.
CREATE TABLE consumer_groups (
  seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  txid xid8 NOT NULL DEFAULT pg_current_xact_id(),
  id text NOT NULL UNIQUE,
  name text NOT NULL UNIQUE,
  source_id text,
  types jsonb NOT NULL,
  start_at timestamptz NOT NULL,
  visibility_timeout_ms integer NOT NULL,
  cursor_txid xid8 NOT NULL,
  cursor_seq bigint NOT NULL,
  created_at timestamptz NOT NULL
);
CREATE INDEX events_txid_seq ON events (txid, seq);

-- Events a group has handed out and not had acknowledged: leased until visible_at, or waiting to be handed out again.
CREATE TABLE consumer_group_pending (
  group_id text NOT NULL,
  event_id text NOT NULL,
  event_seq bigint NOT NULL,
  receipt text,
  deliveries integer NOT NULL,
  visible_at timestamptz NOT NULL,
  PRIMARY KEY (group_id, event_id)
);
CREATE INDEX consumer_group_pending_visible ON consumer_group_pending (group_id, visible_at);
