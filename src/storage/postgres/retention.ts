import type { EventStore } from '../store.ts';
import type pg from 'pg';
import { guardPg } from './store.ts';

export type RetentionQueries = Pick<EventStore, 'deleteBodiesBefore' | 'deleteExpiredDedup'>;

/**
 * Retention on PostgreSQL: each call is one statement over at most `limit`
 * rows. `SKIP LOCKED` passes over rows a worker or a replay is changing right
 * now (the next sweep gets them), so a sweep never waits on, nor blocks, the
 * hot path for longer than one small batch.
 */
export function createPostgresRetention(pool: pg.Pool): RetentionQueries {
  return {
    async deleteBodiesBefore(before, limit) {
      return guardPg(async () => {
        // The row lock re-reads the newest version, so an event a replay just made pending again is skipped.
        const res = await pool.query(
          `UPDATE events SET body = NULL WHERE seq IN (
             SELECT seq FROM events WHERE body IS NOT NULL AND received_at < $1 AND status <> 'pending'
             ORDER BY received_at LIMIT $2 FOR UPDATE SKIP LOCKED)`,
          [before, limit],
        );
        return res.rowCount ?? 0;
      });
    },
    async deleteExpiredDedup(now, limit) {
      return guardPg(async () => {
        const res = await pool.query(
          `DELETE FROM event_dedup d USING (
             SELECT source_id, dedup_key FROM event_dedup WHERE expires_at <= $1 ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED) x
           WHERE d.source_id = x.source_id AND d.dedup_key = x.dedup_key AND d.expires_at <= $1`,
          [now, limit],
        );
        return res.rowCount ?? 0;
      });
    },
  };
}
