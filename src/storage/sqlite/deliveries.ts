import { randomUUID } from 'node:crypto';
import type { DeliveryAttempt, DeliveryFilter, DeliveryRecord, DeliveryStatus, DeliveryStore, NewDelivery } from '../deliveryStore.ts';
import { createGroupCommit } from '../groupCommit.ts';
import type { Due } from './claimOrder.ts';
import { firstDueIds } from './claimOrder.ts';
import { sqliteGroupCommit } from './groupCommit.ts';
import { insertDeliveries } from './messages.ts';
import { afterSeq, seqPage } from './seqPage.ts';
import type { SqliteDb } from './store.ts';
import { guard, statementCache, unsyncedWriter } from './store.ts';

interface Row {
  seq: number;
  id: string;
  endpoint_id: string;
  subject_kind: 'message' | 'event';
  subject_id: string;
  event_type: string;
  status: DeliveryStatus;
  attempts: number;
  round_attempts: number;
  next_attempt_at: number;
  last_error: string | null;
  created_at: number;
  updated_at: number;
}

interface AttemptRow {
  attempt: number;
  started_at: number;
  finished_at: number;
  status_code: number | null;
  latency_ms: number;
  response_body: string | null;
  error: string | null;
  outcome: DeliveryAttempt['outcome'];
}

function toRecord(row: Row): DeliveryRecord {
  return {
    id: row.id,
    endpointId: row.endpoint_id,
    subjectKind: row.subject_kind,
    subjectId: row.subject_id,
    eventType: row.event_type,
    status: row.status,
    attempts: row.attempts,
    nextAttemptAt: row.status === 'pending' ? new Date(row.next_attempt_at) : null,
    lastError: row.last_error,
    createdAt: new Date(row.created_at),
    updatedAt: new Date(row.updated_at),
  };
}

/**
 * The claim's two reads: due deliveries and expired leases, each in the order of
 * its partial index up to the limit (one OR over both would collect every due
 * delivery and sort them). Endpoints are not looked up per row (a deleted one's
 * deliveries are taken, and dead-lettered by the dispatcher). The filters come
 * only when there is something to filter, disabled endpoints or busy ones named
 * by the caller: building their lists costs more than the read itself.
 */
function claimReads(disabled: boolean, skipping: boolean): { due: string; expired: string } {
  const filters = `${disabled ? 'AND endpoint_id NOT IN (SELECT id FROM endpoints WHERE enabled = 0)' : ''} ${skipping ? 'AND endpoint_id NOT IN (SELECT value FROM json_each(@skip))' : ''}`;
  return {
    due: `SELECT id, next_attempt_at AS due, seq FROM deliveries WHERE status = 'pending' AND next_attempt_at <= @now ${filters} ORDER BY next_attempt_at, seq LIMIT @limit`,
    expired: `SELECT id, lease_until AS due, seq FROM deliveries WHERE status = 'sending' AND lease_until <= @now ${filters} ORDER BY lease_until LIMIT @limit`,
  };
}
const CLAIM_READS = [claimReads(false, false), claimReads(false, true), claimReads(true, false), claimReads(true, true)];

/** Named parameters of the delivery filter (`@endpointId`, …) and its SQL. */
const FILTER = `(@endpointId IS NULL OR endpoint_id = @endpointId) AND (@subjectId IS NULL OR subject_id = @subjectId) AND (@status IS NULL OR status = @status)
  AND (@from IS NULL OR created_at >= @from) AND (@to IS NULL OR created_at < @to)`;
const filterParams = (f: DeliveryFilter) => ({ endpointId: f.endpointId, subjectId: f.subjectId, status: f.status, from: f.from?.getTime() ?? null, to: f.to?.getTime() ?? null });

export function createSqliteDeliveryStore(db: SqliteDb): DeliveryStore {
  const sql = statementCache(db);
  const unsynced = unsyncedWriter(db);
  const finishTx = db.transaction((...args: Parameters<DeliveryStore['finish']>): boolean => {
    const [d, outcome, attempt, nowDate] = args;
    const now = nowDate.getTime();
    const base = { id: d.id, token: d.leaseToken, now };
    const where = "WHERE id = @id AND lease_token = @token AND status = 'sending'";
    const clear = 'lease_until = NULL, lease_token = NULL, updated_at = @now';
    const changed =
      outcome.kind === 'succeeded'
        ? sql(`UPDATE deliveries SET status = 'succeeded', last_error = NULL, ${clear} ${where}`).run(base)
        : outcome.kind === 'dead'
          ? sql(`UPDATE deliveries SET status = 'dead', last_error = @error, attempts = attempts - @uncount, round_attempts = round_attempts - @uncount, ${clear} ${where}`).run({
              ...base,
              error: outcome.error,
              // Dead without an attempt (its endpoint was deleted): the claim's count is taken back.
              uncount: attempt ? 0 : 1,
            })
          : outcome.kind === 'retry'
            ? sql(`UPDATE deliveries SET status = 'pending', next_attempt_at = @at, last_error = @error, ${clear} ${where}`).run({ ...base, at: outcome.nextAttemptAt.getTime(), error: outcome.error })
            : sql(`UPDATE deliveries SET status = 'pending', next_attempt_at = @at, attempts = attempts - 1, round_attempts = round_attempts - 1, ${clear} ${where}`).run({
                ...base,
                at: outcome.nextAttemptAt.getTime(),
              });
    if (changed.changes === 0) return false;
    if (attempt) {
      sql(
        `INSERT INTO delivery_attempts (delivery_id, attempt, started_at, finished_at, status_code, latency_ms, response_body, error, outcome)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ).run(d.id, attempt.attempt, attempt.startedAt.getTime(), attempt.finishedAt.getTime(), attempt.statusCode, attempt.latencyMs, attempt.responseBody, attempt.error, attempt.outcome);
    }
    return true;
  });

  const recordSentTx = db.transaction((d: NewDelivery, a: DeliveryAttempt, now: number) => {
    sql(
      `INSERT INTO deliveries (id, endpoint_id, subject_kind, subject_id, cause_id, event_type, status, attempts, round_attempts, next_attempt_at, last_error, created_at, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, 1, 1, ?, ?, ?, ?)`,
    ).run(d.id, d.endpointId, d.subjectKind, d.subjectId, d.causeId, d.eventType, a.outcome === 'succeeded' ? 'succeeded' : 'dead', now, a.error, now, now);
    sql(
      `INSERT INTO delivery_attempts (delivery_id, attempt, started_at, finished_at, status_code, latency_ms, response_body, error, outcome)
       VALUES (?, 1, ?, ?, ?, ?, ?, ?, ?)`,
    ).run(d.id, a.startedAt.getTime(), a.finishedAt.getTime(), a.statusCode, a.latencyMs, a.responseBody, a.error, a.outcome);
  });

  // Read, then lease by id: as one UPDATE over the same reads it cost twice as much.
  const claimTx = db.transaction((c: { limit: number; now: number; leaseUntil: number; token: string; skip: readonly string[] }): (Row & { payload: Buffer | null })[] => {
    const skipping = c.skip.length > 0;
    const disabled = sql('SELECT 1 FROM endpoints WHERE enabled = 0 LIMIT 1').get() !== undefined;
    const reads = CLAIM_READS[(disabled ? 2 : 0) + (skipping ? 1 : 0)]!;
    const params = { now: c.now, limit: c.limit, ...(skipping ? { skip: JSON.stringify(c.skip) } : {}) };
    const found = [...(sql(reads.due).all(params) as Due[]), ...(sql(reads.expired).all(params) as Due[])];
    if (found.length === 0) return [];
    return sql(
      `UPDATE deliveries SET status = 'sending', attempts = attempts + 1, round_attempts = round_attempts + 1, lease_until = @leaseUntil, lease_token = @token, updated_at = @now
       WHERE id IN (SELECT value FROM json_each(@ids))
       RETURNING *, (SELECT m.payload FROM messages m WHERE deliveries.subject_kind = 'message' AND m.id = deliveries.subject_id) AS payload`,
    ).all({ leaseUntil: c.leaseUntil, token: c.token, now: c.now, ids: firstDueIds(found, c.limit) }) as (Row & { payload: Buffer | null })[];
  });

  // Outcomes are committed without an fsync of their own (see unsyncedWriter): one lost to a power
  // failure leaves its delivery leased or pending, so it is sent again, never lost. The fsync per
  // group of outcomes was a fifth of a busy dispatcher's time.
  const commitOutcomes = sqliteGroupCommit(db, (args: Parameters<DeliveryStore['finish']>) => finishTx(...args));
  const finishes = createGroupCommit({ commit: (items: Parameters<DeliveryStore['finish']>[]) => unsynced(() => commitOutcomes(items)), weigh: () => 0, maxInFlight: 1 });

  return {
    async createMany(deliveries, now) {
      return guard(() => db.transaction(() => insertDeliveries(db, deliveries, now.getTime())).immediate());
    },
    async claim({ limit, leaseMs, now, skipEndpoints }) {
      const token = randomUUID();
      const at = now.getTime();
      const rows = guard(() => unsynced(() => claimTx.immediate({ limit, now: at, leaseUntil: at + leaseMs, token, skip: skipEndpoints })));
      return rows.map((r) => ({
        id: r.id,
        endpointId: r.endpoint_id,
        subjectKind: r.subject_kind,
        subjectId: r.subject_id,
        eventType: r.event_type,
        attempt: r.attempts,
        roundAttempt: r.round_attempts,
        leaseToken: token,
        createdAt: new Date(r.created_at),
        ...(r.payload ? { payload: r.payload } : {}),
      }));
    },
    async recordSent(delivery, attempt, now) {
      guard(() => recordSentTx.immediate(delivery, attempt, now.getTime()));
    },
    async finish(delivery, outcome, attempt, now) {
      // Outcomes of deliveries finishing together share one transaction and one fsync.
      return finishes.add([delivery, outcome, attempt, now]);
    },
    async get(id) {
      return guard(() => {
        const row = sql('SELECT * FROM deliveries WHERE id = ?').get(id) as Row | undefined;
        return row ? toRecord(row) : null;
      });
    },
    async attempts(id) {
      return guard(() =>
        (sql('SELECT * FROM delivery_attempts WHERE delivery_id = ? ORDER BY attempt').all(id) as AttemptRow[]).map((a) => ({
          attempt: a.attempt,
          startedAt: new Date(a.started_at),
          finishedAt: new Date(a.finished_at),
          statusCode: a.status_code,
          latencyMs: a.latency_ms,
          responseBody: a.response_body,
          error: a.error,
          outcome: a.outcome,
        })),
      );
    },
    async list(filter, { limit, cursor }) {
      const rows = guard(() => sql(`SELECT * FROM deliveries WHERE seq > @after AND ${FILTER} ORDER BY seq LIMIT @limit`).all({ ...filterParams(filter), after: afterSeq(cursor), limit: limit + 1 }) as Row[]);
      return seqPage(rows, limit, toRecord);
    },
    async retry(filter, limit, now) {
      return guard(
        () =>
          sql(
            `UPDATE deliveries SET status = 'pending', round_attempts = 0, next_attempt_at = @now, updated_at = @now
             WHERE id IN (SELECT id FROM deliveries WHERE status <> 'sending' AND endpoint_id IN (SELECT id FROM endpoints) AND (@ids IS NULL OR id IN (SELECT value FROM json_each(@ids))) AND ${FILTER} ORDER BY seq LIMIT @limit)`,
          ).run({ ...filterParams(filter), ids: filter.ids === null ? null : JSON.stringify(filter.ids), now: now.getTime(), limit }).changes,
      );
    },
  };
}
