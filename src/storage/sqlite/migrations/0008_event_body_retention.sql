-- Retention sweeps find bodies still kept, oldest first, through this index: a body set to
-- NULL leaves it, so each sweep reads only rows it may change, however long the history.
CREATE INDEX events_body_kept ON events (received_at) WHERE body IS NOT NULL;
