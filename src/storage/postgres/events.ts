import type pg from 'pg';
import type { EventStore } from '../store.ts';
import { inTransaction } from './store.ts';

export function createPostgresEventStore(pool: pg.Pool): EventStore {
  return {
    async ingest(e) {
      return inTransaction(pool, async (client) => {
        // Claims the dedup key, or takes over one whose window has passed; concurrent
        // deliveries of the same key serialise on the primary key and only one claims it.
        const claimed = await client.query(
          `INSERT INTO event_dedup (source_id, dedup_key, event_id, expires_at) VALUES ($1, $2, $3, $4)
           ON CONFLICT (source_id, dedup_key) DO UPDATE SET event_id = excluded.event_id, expires_at = excluded.expires_at
           WHERE event_dedup.expires_at <= $5
           RETURNING event_id`,
          [e.sourceId, e.dedupKey, e.id, e.dedupUntil, e.receivedAt],
        );
        if (claimed.rowCount === 0) {
          const live = await client.query<{ event_id: string }>('SELECT event_id FROM event_dedup WHERE source_id = $1 AND dedup_key = $2', [e.sourceId, e.dedupKey]);
          return { eventId: live.rows[0]!.event_id, duplicate: true };
        }
        await client.query('INSERT INTO events (id, source_id, type, delivery_id, dedup_key, headers, body, received_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)', [
          e.id,
          e.sourceId,
          e.type,
          e.deliveryId,
          e.dedupKey,
          JSON.stringify(e.headers),
          e.body,
          e.receivedAt,
        ]);
        if (e.jobs.length > 0) {
          await client.query(
            `INSERT INTO jobs (id, event_id, kind, status, run_at, created_at, updated_at)
             SELECT id, $2, kind, 'ready', $3, $3, $3 FROM unnest($1::text[], $4::text[]) AS j(id, kind)`,
            [e.jobs.map((j) => j.id), e.id, e.receivedAt, e.jobs.map((j) => j.kind)],
          );
        }
        return { eventId: e.id, duplicate: false };
      });
    },
  };
}
