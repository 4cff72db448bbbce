import type { EventStore } from '../store.ts';
import type { SqliteDb } from './store.ts';
import { guard, statementCache } from './store.ts';

export type RetentionQueries = Pick<EventStore, 'deleteBodiesBefore' | 'deleteExpiredDedup'>;

/**
 * Retention on SQLite: each call is one short IMMEDIATE transaction over at
 * most `limit` rows, so ingest waits at most one batch for the write lock.
 */
export function createSqliteRetention(db: SqliteDb): RetentionQueries {
  // Prepared on first use: the store is built before it is migrated.
  const sql = statementCache(db);
  // `status <> 'pending'` (not an IN list) keeps the planner on events_body_kept (migration 0008).
  const bodiesTx = db.transaction(
    (before: number, limit: number) =>
      sql(
        `UPDATE events SET body = NULL WHERE seq IN (
           SELECT seq FROM events WHERE body IS NOT NULL AND received_at < ? AND status <> 'pending' ORDER BY received_at LIMIT ?)`,
      ).run(before, limit).changes,
  );
  const dedupTx = db.transaction(
    (now: number, limit: number) => sql('DELETE FROM event_dedup WHERE rowid IN (SELECT rowid FROM event_dedup WHERE expires_at <= ? ORDER BY expires_at LIMIT ?)').run(now, limit).changes,
  );
  return {
    async deleteBodiesBefore(before, limit) {
      return guard(() => bodiesTx.immediate(before.getTime(), limit));
    },
    async deleteExpiredDedup(now, limit) {
      return guard(() => dedupTx.immediate(now.getTime(), limit));
    },
  };
}
