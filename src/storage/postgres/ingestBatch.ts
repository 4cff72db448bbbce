import type pg from 'pg';
import type { BatchOutcome } from '../groupCommit.ts';
import type { NewEvent } from '../store.ts';
import { inTransaction } from './store.ts';

type Ingested = { eventId: string; duplicate: boolean };

/**
 * Batch transactions running at once. Fewer in flight means larger batches (what
 * arrives while they run waits for the next one) and the pool's other
 * connections free for the rest of the app: with 50 concurrent deliveries, 1 or 2
 * in flight ingested ~1.8x as many per second as an unbounded number.
 */
export const PG_INGEST_MAX_IN_FLIGHT = 2;

/**
 * The commit step of PostgreSQL's group commit (see ../groupCommit.ts): a batch
 * of deliveries in one transaction of at most six statements (BEGIN, claim the
 * keys, look up the live ones, insert the events, insert the jobs, COMMIT),
 * whatever its size.
 *
 * PostgreSQL already shares WAL flushes between concurrent commits, so the flush
 * is not what batching saves here: a transaction per delivery costs five round
 * trips, each holding one of the pool's few connections, and under concurrency
 * requests queue for a connection. Batched, inbound throughput at 50 connections
 * roughly tripled on a development machine (docs/performance.md, "Ingest").
 *
 * Dedup stays exact: copies of one key inside the batch are resolved here (the
 * first one is written, later ones are its duplicates); against other
 * transactions the primary key of event_dedup decides, as for a single delivery.
 * Keys are claimed in sorted order so two batches never wait on each other's
 * rows in opposite orders (no deadlock). Any failure rolls the whole batch back
 * and rejects every caller in it.
 */
export async function ingestBatch(pool: pg.Pool, events: NewEvent[]): Promise<BatchOutcome<Ingested>[]> {
  const keyOf = (e: NewEvent): string => `${e.sourceId}\u0000${e.dedupKey}`;
  const first = new Map<string, NewEvent>();
  for (const e of events) if (!first.has(keyOf(e))) first.set(keyOf(e), e);
  const unique = [...first.values()];

  const outcomeOf = await inTransaction(pool, async (client) => {
    // Claims each key, or takes over one whose window had passed when its delivery arrived.
    const claimed = await client.query<{ event_id: string }>(
      `WITH input AS (SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::timestamptz[]) AS t(source_id, dedup_key, event_id, expires_at, received_at))
       INSERT INTO event_dedup (source_id, dedup_key, event_id, expires_at)
       SELECT source_id, dedup_key, event_id, expires_at FROM input ORDER BY source_id, dedup_key
       ON CONFLICT (source_id, dedup_key) DO UPDATE SET event_id = excluded.event_id, expires_at = excluded.expires_at
       WHERE event_dedup.expires_at <= (SELECT i.received_at FROM input i WHERE i.source_id = excluded.source_id AND i.dedup_key = excluded.dedup_key)
       RETURNING event_id`,
      [unique.map((e) => e.sourceId), unique.map((e) => e.dedupKey), unique.map((e) => e.id), unique.map((e) => e.dedupUntil), unique.map((e) => e.receivedAt)],
    );
    const won = new Set(claimed.rows.map((r) => r.event_id));
    const stored = unique.filter((e) => won.has(e.id));
    const lost = unique.filter((e) => !won.has(e.id));

    const live = new Map<string, string>();
    if (lost.length > 0) {
      const rows = await client.query<{ source_id: string; dedup_key: string; event_id: string }>(
        `SELECT d.source_id, d.dedup_key, d.event_id FROM event_dedup d
         JOIN unnest($1::text[], $2::text[]) AS t(source_id, dedup_key) USING (source_id, dedup_key)`,
        [lost.map((e) => e.sourceId), lost.map((e) => e.dedupKey)],
      );
      for (const r of rows.rows) live.set(`${r.source_id}\u0000${r.dedup_key}`, r.event_id);
    }
    if (stored.length > 0) {
      // A VALUES row per event rather than unnest: bodies go as binary parameters, not hex text in an array.
      const rows = stored.map((_, i) => `($${i * 8 + 1}, $${i * 8 + 2}, $${i * 8 + 3}, $${i * 8 + 4}, $${i * 8 + 5}, $${i * 8 + 6}::jsonb, $${i * 8 + 7}::bytea, $${i * 8 + 8}::timestamptz)`);
      await client.query(
        `INSERT INTO events (id, source_id, type, delivery_id, dedup_key, headers, body, received_at) VALUES ${rows.join(', ')}`,
        stored.flatMap((e) => [e.id, e.sourceId, e.type, e.deliveryId, e.dedupKey, JSON.stringify(e.headers), e.body, e.receivedAt]),
      );
      const jobs = stored.flatMap((e) => e.jobs.map((j) => ({ id: j.id, kind: j.kind, event: e })));
      if (jobs.length > 0) {
        await client.query(
          `INSERT INTO jobs (id, event_id, kind, status, run_at, created_at, updated_at)
           SELECT id, event_id, kind, 'ready', at, at, at FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[]) AS j(id, event_id, kind, at)`,
          [jobs.map((j) => j.id), jobs.map((j) => j.event.id), jobs.map((j) => j.kind), jobs.map((j) => j.event.receivedAt)],
        );
      }
    }
    return (e: NewEvent): Ingested => {
      const winner = first.get(keyOf(e))!;
      if (won.has(winner.id)) return { eventId: winner.id, duplicate: winner !== e };
      const eventId = live.get(keyOf(e));
      // The key was live when claimed, and the claim locked its row until this transaction ends.
      if (eventId === undefined) throw new Error(`dedup row for ${e.dedupKey} vanished`);
      return { eventId, duplicate: true };
    };
  });
  return events.map((e): BatchOutcome<Ingested> => {
    try {
      return { ok: true, value: outcomeOf(e) };
    } catch (error) {
      return { ok: false, error };
    }
  });
}
