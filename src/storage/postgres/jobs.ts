import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import type { JobStore } from '../store.ts';
import { guardPg, inTransaction } from './store.ts';

/** The event's status a job's new status implies. */
const EVENT_STATUS: Record<string, string> = { done: 'processed', ready: 'pending', dead: 'dead' };

/** `claimPool`: connections set for lease claims (see openPostgresStore). */
export function createPostgresJobStore(pool: pg.Pool, claimPool: pg.Pool): JobStore {
  return {
    async claim({ limit, leaseMs, now }) {
      const token = randomUUID();
      return guardPg(async () => {
        const res = await claimPool.query<{ id: string; event_id: string; kind: string; attempts: number }>(
          // Due jobs and expired leases read apart, each in index order up to the limit: one OR
          // over both would collect every due job and sort them all on each claim.
          `WITH expired AS (
             SELECT id, lease_until AS due, seq FROM jobs WHERE status = 'running' AND lease_until <= $3 ORDER BY lease_until LIMIT $4 FOR UPDATE SKIP LOCKED
           ), due AS (
             SELECT id, run_at AS due, seq FROM jobs WHERE status = 'ready' AND run_at <= $3 ORDER BY run_at, seq LIMIT $4 FOR UPDATE SKIP LOCKED
           )
           UPDATE jobs SET status = 'running', attempts = attempts + 1, lease_until = $1, lease_token = $2, updated_at = $3
           WHERE id IN (SELECT id FROM (SELECT * FROM expired UNION ALL SELECT * FROM due) c ORDER BY due, seq LIMIT $4)
           RETURNING id, event_id, kind, attempts`,
          [new Date(now.getTime() + leaseMs), token, now, limit],
        );
        return res.rows.map((r) => ({ id: r.id, eventId: r.event_id, kind: r.kind, attempt: r.attempts, leaseToken: token, claimedAt: now }));
      });
    },
    async finish(job, result, now) {
      const status = result.outcome === 'retry' ? 'ready' : result.outcome;
      const error = result.outcome === 'done' ? null : result.error;
      return inTransaction(pool, async (client) => {
        const changed = await client.query(
          `UPDATE jobs SET status = $1, run_at = coalesce($2, run_at), last_error = $3, lease_until = NULL, lease_token = NULL, updated_at = $4
           WHERE id = $5 AND lease_token = $6 AND status = 'running'`,
          [status, result.outcome === 'retry' ? result.runAt : null, error, now, job.id, job.leaseToken],
        );
        if (changed.rowCount === 0) return false;
        await client.query('UPDATE events SET status = $1 WHERE id = $2', [EVENT_STATUS[status], job.eventId]);
        await client.query('INSERT INTO job_attempts (job_id, attempt, started_at, finished_at, outcome, error) VALUES ($1, $2, $3, $4, $5, $6)', [
          job.id,
          job.attempt,
          job.claimedAt,
          now,
          result.outcome,
          error,
        ]);
        return true;
      });
    },
    async postpone(job, runAt, now) {
      // The claim counted this attempt; giving the job back uncounted takes it off again.
      return guardPg(async () => {
        const changed = await pool.query(
          `UPDATE jobs SET status = 'ready', attempts = attempts - 1, run_at = $1, lease_until = NULL, lease_token = NULL, updated_at = $2
           WHERE id = $3 AND lease_token = $4 AND status = 'running'`,
          [runAt, now, job.id, job.leaseToken],
        );
        return (changed.rowCount ?? 0) > 0;
      });
    },
    async depth(now) {
      return guardPg(async () => {
        const counts = await pool.query<{ status: string; n: string }>("SELECT status, count(*) AS n FROM jobs WHERE status IN ('ready', 'running', 'dead') GROUP BY status");
        const oldest = await pool.query<{ t: Date | null }>("SELECT min(run_at) AS t FROM jobs WHERE status = 'ready' AND run_at <= $1", [now]);
        const n = (s: string): number => Number(counts.rows.find((c) => c.status === s)?.n ?? 0);
        const t = oldest.rows[0]?.t ?? null;
        return { ready: n('ready'), running: n('running'), dead: n('dead'), oldestDueMs: t === null ? null : now.getTime() - t.getTime() };
      });
    },
  };
}
