import type { EventRecord, EventStatus, EventStore, JobHistory, NewEvent } from '../store.ts';
import { afterSeq, seqPage } from './seqPage.ts';
import { createGroupCommit } from '../groupCommit.ts';
import { sqliteGroupCommit } from './groupCommit.ts';
import { createSqliteRetention } from './retention.ts';
import type { SqliteDb } from './store.ts';
import { guard, statementCache } from './store.ts';

export interface Row {
  seq: number;
  id: string;
  source_id: string;
  type: string;
  delivery_id: string | null;
  dedup_key: string;
  headers: string;
  body?: Buffer | null;
  received_at: number;
  status: EventStatus;
}

export function toRecord(row: Row): EventRecord {
  return {
    id: row.id,
    sourceId: row.source_id,
    type: row.type,
    deliveryId: row.delivery_id,
    dedupKey: row.dedup_key,
    headers: JSON.parse(row.headers) as Record<string, string>,
    body: row.body ?? null,
    receivedAt: new Date(row.received_at),
    status: row.status,
  };
}

/** `github.*` matches every type starting with `github.`; anything else matches exactly. Five parameters: exact twice, prefix three times. */
function typeFilter(type: string | null): (string | null)[] {
  const prefix = type?.endsWith('.*') ? type.slice(0, -1) : null;
  const exact = prefix === null ? type : null;
  return [exact, exact, prefix, prefix, prefix];
}

const LIST_COLUMNS = 'seq, id, source_id, type, delivery_id, dedup_key, headers, received_at, status';

export function createSqliteEventStore(db: SqliteDb): EventStore {
  const sql = statementCache(db);
  // IMMEDIATE: the write lock is taken first, so the dedup check and the insert are one step.
  const ingestTx = db.transaction((e: NewEvent): { eventId: string; duplicate: boolean } => {
    const now = e.receivedAt.getTime();
    const live = sql('SELECT event_id FROM event_dedup WHERE source_id = ? AND dedup_key = ? AND expires_at > ?').get(e.sourceId, e.dedupKey, now) as { event_id: string } | undefined;
    if (live) return { eventId: live.event_id, duplicate: true };
    sql(
      `INSERT INTO event_dedup (source_id, dedup_key, event_id, expires_at) VALUES (?, ?, ?, ?)
       ON CONFLICT (source_id, dedup_key) DO UPDATE SET event_id = excluded.event_id, expires_at = excluded.expires_at`,
    ).run(e.sourceId, e.dedupKey, e.id, e.dedupUntil.getTime());
    sql('INSERT INTO events (id, source_id, type, delivery_id, dedup_key, headers, body, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)').run(
      e.id,
      e.sourceId,
      e.type,
      e.deliveryId,
      e.dedupKey,
      JSON.stringify(e.headers),
      e.body,
      now,
    );
    const job = sql("INSERT INTO jobs (id, event_id, kind, status, run_at, created_at, updated_at) VALUES (?, ?, ?, 'ready', ?, ?, ?)");
    for (const j of e.jobs) job.run(j.id, e.id, j.kind, now, now, now);
    return { eventId: e.id, duplicate: false };
  });
  const ingestBatch = createGroupCommit({ commit: sqliteGroupCommit(db, ingestTx), weigh: (e: NewEvent) => e.body.length, maxInFlight: 1 });

  const replayTx = db.transaction((id: string, jobId: string, now: number) => {
    if (sql("UPDATE events SET status = 'pending' WHERE id = ?").run(id).changes === 0) return false;
    sql("INSERT INTO jobs (id, event_id, kind, status, run_at, created_at, updated_at) VALUES (?, ?, 'process', 'ready', ?, ?, ?)").run(jobId, id, now, now, now);
    return true;
  });

  return {
    // Concurrent deliveries share one IMMEDIATE transaction and one fsync (see ../groupCommit.ts).
    async ingest(event) {
      return ingestBatch.add(event);
    },
    onIngestCommit(listener) {
      ingestBatch.onCommit(listener);
    },
    async get(id) {
      return guard(() => {
        const row = sql('SELECT * FROM events WHERE id = ?').get(id) as Row | undefined;
        return row ? toRecord(row) : null;
      });
    },
    async history(id) {
      return guard(() => {
        const jobs = sql('SELECT id, kind, status, last_error, run_at, created_at FROM jobs WHERE event_id = ? ORDER BY seq').all(id) as {
          id: string;
          kind: string;
          status: string;
          last_error: string | null;
          run_at: number;
          created_at: number;
        }[];
        const attempts = sql('SELECT * FROM job_attempts WHERE job_id IN (SELECT id FROM jobs WHERE event_id = ?) ORDER BY attempt').all(id) as {
          job_id: string;
          attempt: number;
          started_at: number;
          finished_at: number;
          outcome: string;
          error: string | null;
        }[];
        return jobs.map(
          (j): JobHistory => ({
            id: j.id,
            kind: j.kind,
            status: j.status,
            lastError: j.last_error,
            runAt: new Date(j.run_at),
            createdAt: new Date(j.created_at),
            attempts: attempts
              .filter((a) => a.job_id === j.id)
              .map((a) => ({ attempt: a.attempt, startedAt: new Date(a.started_at), finishedAt: new Date(a.finished_at), outcome: a.outcome, error: a.error })),
          }),
        );
      });
    },
    async list(f, { limit, cursor }) {
      const after = afterSeq(cursor);
      const rows = guard(
        () =>
          sql(
            `SELECT ${LIST_COLUMNS} FROM events WHERE seq > ?
               AND (? IS NULL OR source_id = ?) AND (? IS NULL OR type = ?) AND (? IS NULL OR substr(type, 1, length(?)) = ?) AND (? IS NULL OR status = ?)
               AND (? IS NULL OR received_at >= ?) AND (? IS NULL OR received_at < ?)
             ORDER BY seq LIMIT ?`,
          ).all(
            after,
            f.sourceId,
            f.sourceId,
            ...typeFilter(f.type),
            f.status,
            f.status,
            f.from?.getTime() ?? null,
            f.from?.getTime() ?? null,
            f.to?.getTime() ?? null,
            f.to?.getTime() ?? null,
            limit + 1,
          ) as Row[],
      );
      return seqPage(rows, limit, toRecord);
    },
    async replay(id, jobId, now) {
      return guard(() => replayTx.immediate(id, jobId, now.getTime()));
    },
    async replayMatching(f, limit, newJobId, now) {
      return guard(() =>
        db
          .transaction(() => {
            const ids = sql(
              `SELECT id FROM events WHERE (? IS NULL OR source_id = ?) AND (? IS NULL OR type = ?) AND (? IS NULL OR substr(type, 1, length(?)) = ?)
                 AND (? IS NULL OR status = ?) AND (? IS NULL OR received_at >= ?) AND (? IS NULL OR received_at < ?) ORDER BY seq LIMIT ?`,
            ).all(f.sourceId, f.sourceId, ...typeFilter(f.type), f.status, f.status, f.from?.getTime() ?? null, f.from?.getTime() ?? null, f.to?.getTime() ?? null, f.to?.getTime() ?? null, limit) as {
              id: string;
            }[];
            for (const { id } of ids) replayTx(id, newJobId(), now.getTime());
            return ids.length;
          })
          .immediate(),
      );
    },
    ...createSqliteRetention(db),
  };
}
