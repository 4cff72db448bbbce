-- A claim's token: only the worker holding the current lease may finish the job.
ALTER TABLE jobs ADD COLUMN lease_token text;

-- Every processing attempt, for the event's history.
CREATE TABLE job_attempts (
  job_id text NOT NULL,
  attempt integer NOT NULL,
  started_at timestamptz NOT NULL,
  finished_at timestamptz NOT NULL,
  outcome text NOT NULL CHECK (outcome IN ('done', 'retry', 'dead')),
  error text,
  PRIMARY KEY (job_id, attempt)
);

-- Where an event is in processing: pending (a job to run), processed, or dead (last job dead-lettered).
ALTER TABLE events ADD COLUMN status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'processed', 'dead'));
CREATE INDEX events_status ON events (status, received_at);
