import type pg from 'pg';
import type { EventRecord, EventStatus, EventStore, NewEvent } from '../store.ts';
import { StoreUnavailableError } from '../store.ts';
import { PG_CONNECT_TIMEOUT_MS, guardPg, inTransaction } from './store.ts';
import { listPage } from './listPage.ts';
import { createGroupCommit } from '../groupCommit.ts';
import { commitEachOnRefusal } from './eachAlone.ts';
import { PG_INGEST_MAX_IN_FLIGHT, ingestBatch } from './ingestBatch.ts';
import { createPostgresRetention } from './retention.ts';

export interface Row {
  seq: string;
  id: string;
  source_id: string;
  type: string;
  delivery_id: string | null;
  dedup_key: string;
  headers: Record<string, string>;
  body?: Buffer | null;
  received_at: Date;
  status: EventStatus;
}

export function toRecord(row: Row): EventRecord {
  return {
    id: row.id,
    sourceId: row.source_id,
    type: row.type,
    deliveryId: row.delivery_id,
    dedupKey: row.dedup_key,
    headers: row.headers,
    body: row.body ?? null,
    receivedAt: row.received_at,
    status: row.status,
  };
}

export function createPostgresEventStore(pool: pg.Pool): EventStore {
  const ingestBatcher = createGroupCommit({
    // One delivery the server refuses fails alone, not every delivery that shared its commit.
    commit: (events: NewEvent[]) => commitEachOnRefusal(events, (some) => ingestBatch(pool, some)),
    weigh: (e) => e.body.length,
    maxInFlight: PG_INGEST_MAX_IN_FLIGHT,
    // While the running batches hang (a server that stopped answering), the deliveries behind
    // them get 503 after as long as a pooled connection may take, as they would without batching.
    maxWaitMs: PG_CONNECT_TIMEOUT_MS,
    tooLong: () => new StoreUnavailableError(new Error(`no commit took this delivery within ${PG_CONNECT_TIMEOUT_MS} ms`)),
  });
  return {
    // Concurrent deliveries share one transaction (see ../groupCommit.ts and ./ingestBatch.ts).
    async ingest(event) {
      return ingestBatcher.add(event);
    },
    onIngestCommit(listener) {
      ingestBatcher.onCommit(listener);
    },
    async get(id) {
      return guardPg(async () => {
        const res = await pool.query<Row>('SELECT * FROM events WHERE id = $1', [id]);
        return res.rows[0] ? toRecord(res.rows[0]) : null;
      });
    },
    async history(id) {
      return guardPg(async () => {
        const jobs = await pool.query<{ id: string; kind: string; status: string; last_error: string | null; run_at: Date; created_at: Date }>(
          'SELECT id, kind, status, last_error, run_at, created_at FROM jobs WHERE event_id = $1 ORDER BY seq',
          [id],
        );
        const attempts = await pool.query<{ job_id: string; attempt: number; started_at: Date; finished_at: Date; outcome: string; error: string | null }>(
          'SELECT * FROM job_attempts WHERE job_id IN (SELECT id FROM jobs WHERE event_id = $1) ORDER BY attempt',
          [id],
        );
        return jobs.rows.map((j) => ({
          id: j.id,
          kind: j.kind,
          status: j.status,
          lastError: j.last_error,
          runAt: j.run_at,
          createdAt: j.created_at,
          attempts: attempts.rows
            .filter((a) => a.job_id === j.id)
            .map((a) => ({ attempt: a.attempt, startedAt: a.started_at, finishedAt: a.finished_at, outcome: a.outcome, error: a.error })),
        }));
      });
    },
    async list(f, { limit, cursor }) {
      const prefix = f.type?.endsWith('.*') ? f.type.slice(0, -1) : null;
      return listPage<Row, EventRecord>(pool, {
        table: 'events',
        // Lists carry no bodies: not read at all.
        columns: 'seq, txid, id, source_id, type, delivery_id, dedup_key, headers, received_at, status',
        where: `($4::text IS NULL OR source_id = $4) AND ($5::text IS NULL OR type = $5) AND ($6::text IS NULL OR starts_with(type, $6))
          AND ($7::text IS NULL OR status = $7) AND ($8::timestamptz IS NULL OR received_at >= $8) AND ($9::timestamptz IS NULL OR received_at < $9)`,
        params: [f.sourceId, prefix === null ? f.type : null, prefix, f.status, f.from, f.to],
        limit,
        cursor,
        map: (row) => toRecord({ ...row, body: null }),
      });
    },
    async replayMatching(f, limit, newJobId, now) {
      const prefix = f.type?.endsWith('.*') ? f.type.slice(0, -1) : null;
      return inTransaction(pool, async (client) => {
        const ids = await client.query<{ id: string }>(
          `UPDATE events SET status = 'pending' WHERE id IN (
             SELECT id FROM events WHERE ($1::text IS NULL OR source_id = $1) AND ($2::text IS NULL OR type = $2) AND ($3::text IS NULL OR starts_with(type, $3))
               AND ($4::text IS NULL OR status = $4) AND ($5::timestamptz IS NULL OR received_at >= $5) AND ($6::timestamptz IS NULL OR received_at < $6)
             ORDER BY seq LIMIT $7 FOR UPDATE)
           RETURNING id`,
          [f.sourceId, prefix === null ? f.type : null, prefix, f.status, f.from, f.to, limit],
        );
        if (ids.rows.length > 0) {
          await client.query(
            `INSERT INTO jobs (id, event_id, kind, status, run_at, created_at, updated_at)
             SELECT j, e, 'process', 'ready', $3, $3, $3 FROM unnest($1::text[], $2::text[]) AS t(j, e)`,
            [ids.rows.map(() => newJobId()), ids.rows.map((r) => r.id), now],
          );
        }
        return ids.rows.length;
      });
    },
    async replay(id, jobId, now) {
      return inTransaction(pool, async (client) => {
        const changed = await client.query("UPDATE events SET status = 'pending' WHERE id = $1", [id]);
        if (changed.rowCount === 0) return false;
        await client.query("INSERT INTO jobs (id, event_id, kind, status, run_at, created_at, updated_at) VALUES ($1, $2, 'process', 'ready', $3, $3, $3)", [jobId, id, now]);
        return true;
      });
    },
    ...createPostgresRetention(pool),
  };
}
