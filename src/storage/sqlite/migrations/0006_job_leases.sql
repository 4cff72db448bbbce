-- A claim's token: only the worker holding the current lease may finish the job.
ALTER TABLE jobs ADD COLUMN lease_token TEXT;

-- Every processing attempt, for the event's history.
CREATE TABLE job_attempts (
  job_id TEXT NOT NULL,
  attempt INTEGER NOT NULL,
  started_at INTEGER NOT NULL,
  finished_at INTEGER NOT NULL,
  outcome TEXT NOT NULL CHECK (outcome IN ('done', 'retry', 'dead')),
  error TEXT,
  PRIMARY KEY (job_id, attempt)
) STRICT;

-- Where an event is in processing: pending (a job to run), processed, or dead (last job dead-lettered).
ALTER TABLE events ADD COLUMN status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'processed', 'dead'));
CREATE INDEX events_status ON events (status, received_at);
