import type { EventStore, NewEvent } from '../store.ts';
import type { SqliteDb } from './store.ts';
import { guard, statementCache } from './store.ts';

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

  return {
    async ingest(event) {
      return guard(() => ingestTx.immediate(event));
    },
  };
}
