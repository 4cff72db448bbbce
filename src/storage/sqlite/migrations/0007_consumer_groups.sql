-- Consumer groups: applications pulling events over HTTP. Writers are serialised on
-- SQLite, so seq order is commit order and the cursor is the last seq scanned.
CREATE TABLE consumer_groups (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  name TEXT NOT NULL UNIQUE,
  source_id TEXT,
  types TEXT NOT NULL,
  start_at INTEGER NOT NULL,
  visibility_timeout_ms INTEGER NOT NULL,
  cursor_seq INTEGER NOT NULL,
  created_at INTEGER NOT NULL
) STRICT;

-- Events a group has handed out and not had acknowledged: leased until visible_at, or waiting to be handed out again.
CREATE TABLE consumer_group_pending (
  group_id TEXT NOT NULL,
  event_id TEXT NOT NULL,
  event_seq INTEGER NOT NULL,
  receipt TEXT,
  deliveries INTEGER NOT NULL,
  visible_at INTEGER NOT NULL,
  PRIMARY KEY (group_id, event_id)
) STRICT;
CREATE INDEX consumer_group_pending_visible ON consumer_group_pending (group_id, visible_at);
