import { randomUUID } from 'node:crypto';
import type { ClaimedJob, JobStore } from '../store.ts';
import { createGroupCommit } from '../groupCommit.ts';
import type { Due } from './claimOrder.ts';
import { firstDueIds } from './claimOrder.ts';
import { sqliteGroupCommit } from './groupCommit.ts';
import type { SqliteDb } from './store.ts';
import { guard, statementCache, unsyncedWriter } from './store.ts';

/** The event's status a job's new status implies. */
const EVENT_STATUS: Record<string, string> = { done: 'processed', ready: 'pending', dead: 'dead' };

interface Finish {
  job: ClaimedJob;
  status: string;
  runAt: number | null;
  error: string | null;
  now: number;
}

interface Row {
  id: string;
  event_id: string;
  kind: string;
  attempts: number;
}

export function createSqliteJobStore(db: SqliteDb): JobStore {
  const sql = statementCache(db);
  const unsynced = unsyncedWriter(db);
  const claimTx = db.transaction((limit: number, leaseUntil: number, now: number, token: string): Row[] => {
    // Due jobs and expired leases read apart, each in index order up to the limit (one OR over
    // both would collect every due job and sort them all on each claim), then leased by id: as
    // one UPDATE over the same reads it cost twice as much (see the delivery claim).
    const found = [
      ...(sql(`SELECT id, run_at AS due, seq FROM jobs WHERE status = 'ready' AND run_at <= @now ORDER BY run_at, seq LIMIT @limit`).all({ now, limit }) as Due[]),
      ...(sql(`SELECT id, lease_until AS due, seq FROM jobs WHERE status = 'running' AND lease_until <= @now ORDER BY lease_until LIMIT @limit`).all({ now, limit }) as Due[]),
    ];
    if (found.length === 0) return [];
    return sql(
      `UPDATE jobs SET status = 'running', attempts = attempts + 1, lease_until = @leaseUntil, lease_token = @token, updated_at = @now
       WHERE id IN (SELECT value FROM json_each(@ids))
       RETURNING id, event_id, kind, attempts`,
    ).all({ leaseUntil, token, now, ids: firstDueIds(found, limit) }) as Row[];
  });
  const finishTx = db.transaction((job: ClaimedJob, status: string, runAt: number | null, error: string | null, now: number) => {
    const changed = sql(
      `UPDATE jobs SET status = ?, run_at = coalesce(?, run_at), last_error = ?, lease_until = NULL, lease_token = NULL, updated_at = ?
       WHERE id = ? AND lease_token = ? AND status = 'running'`,
    ).run(status, runAt, error, now, job.id, job.leaseToken);
    if (changed.changes === 0) return false;
    sql('UPDATE events SET status = ? WHERE id = ?').run(EVENT_STATUS[status]!, job.eventId);
    sql('INSERT INTO job_attempts (job_id, attempt, started_at, finished_at, outcome, error) VALUES (?, ?, ?, ?, ?, ?)').run(
      job.id,
      job.attempt,
      job.claimedAt.getTime(),
      now,
      status === 'ready' ? 'retry' : status,
      error,
    );
    return true;
  });

  // Outcomes commit without an fsync of their own (see unsyncedWriter): one lost to a power
  // failure leaves its job to run again (processing is at-least-once; routing a job twice adds no
  // delivery). Nothing acknowledged depends on them.
  const commitOutcomes = sqliteGroupCommit(db, (f: Finish) => finishTx(f.job, f.status, f.runAt, f.error, f.now));
  const finishes = createGroupCommit({
    commit: (items: Finish[]) => unsynced(() => commitOutcomes(items)),
    weigh: () => 0,
    maxInFlight: 1,
  });

  return {
    async claim({ limit, leaseMs, now }) {
      // One token per claim: each job's lease is its own row's token.
      const token = randomUUID();
      const rows = guard(() => unsynced(() => claimTx.immediate(limit, now.getTime() + leaseMs, now.getTime(), token)));
      return rows.map((r) => ({ id: r.id, eventId: r.event_id, kind: r.kind, attempt: r.attempts, leaseToken: token, claimedAt: now }));
    },
    async finish(job, result, now) {
      const status = result.outcome === 'retry' ? 'ready' : result.outcome;
      const runAt = result.outcome === 'retry' ? result.runAt.getTime() : null;
      const error = result.outcome === 'done' ? null : result.error;
      // Outcomes of jobs finishing together share one transaction.
      return finishes.add({ job, status, runAt, error, now: now.getTime() });
    },
    async postpone(job, runAt, now) {
      // The claim counted this attempt; giving the job back uncounted takes it off again.
      const changed = guard(() =>
        sql(
          `UPDATE jobs SET status = 'ready', attempts = attempts - 1, run_at = ?, lease_until = NULL, lease_token = NULL, updated_at = ?
           WHERE id = ? AND lease_token = ? AND status = 'running'`,
        ).run(runAt.getTime(), now.getTime(), job.id, job.leaseToken),
      );
      return changed.changes > 0;
    },
    async depth(now) {
      return guard(() => {
        const counts = sql("SELECT status, count(*) AS n FROM jobs WHERE status IN ('ready', 'running', 'dead') GROUP BY status").all() as { status: string; n: number }[];
        const oldest = sql("SELECT min(run_at) AS t FROM jobs WHERE status = 'ready' AND run_at <= ?").get(now.getTime()) as { t: number | null };
        const n = (s: string): number => counts.find((c) => c.status === s)?.n ?? 0;
        return { ready: n('ready'), running: n('running'), dead: n('dead'), oldestDueMs: oldest.t === null ? null : now.getTime() - oldest.t };
      });
    },
  };
}
