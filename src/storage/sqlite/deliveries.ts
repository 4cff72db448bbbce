import { randomUUID } from 'node:crypto';
import type { DeliveryAttempt, DeliveryFilter, DeliveryRecord, DeliveryStatus, DeliveryStore, NewDelivery } from '../deliveryStore.ts';
import { createGroupCommit } from '../groupCommit.ts';
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

/** Named parameters of the delivery filter (`@endpointId`, …) and its SQL. */
/** A claim takes deliveries of enabled endpoints, and of deleted ones, which the dispatcher dead-letters rather than leave waiting. */
const ENDPOINT_ENABLED_OR_GONE = 'coalesce((SELECT e.enabled FROM endpoints e WHERE e.id = d.endpoint_id), 1) = 1';

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

  const finishes = createGroupCommit({ commit: sqliteGroupCommit(db, (args: Parameters<DeliveryStore['finish']>) => finishTx(...args)), weigh: () => 0, maxInFlight: 1 });

  return {
    async createMany(deliveries, now) {
      return guard(() => db.transaction(() => insertDeliveries(db, deliveries, now.getTime())).immediate());
    },
    async claim({ limit, leaseMs, now, busyEndpoints }) {
      const token = randomUUID();
      const at = now.getTime();
      const rows = guard(() =>
        unsynced(() =>
          db
            .transaction(
            () =>
              // Due deliveries and expired leases read apart, each in index order (see the job claim).
              sql(
                `UPDATE deliveries SET status = 'sending', attempts = attempts + 1, round_attempts = round_attempts + 1, lease_until = @leaseUntil, lease_token = @token, updated_at = @now
                 WHERE id IN (SELECT id FROM (
                   SELECT * FROM (SELECT d.id, d.next_attempt_at AS due, d.seq FROM deliveries d
                     WHERE d.status = 'pending' AND d.next_attempt_at <= @now AND ${ENDPOINT_ENABLED_OR_GONE} AND d.endpoint_id NOT IN (SELECT value FROM json_each(@busy))
                     ORDER BY d.next_attempt_at, d.seq LIMIT @limit)
                   UNION ALL
                   SELECT * FROM (SELECT d.id, d.lease_until AS due, d.seq FROM deliveries d
                     WHERE d.status = 'sending' AND d.lease_until <= @now AND ${ENDPOINT_ENABLED_OR_GONE} AND d.endpoint_id NOT IN (SELECT value FROM json_each(@busy))
                     ORDER BY d.lease_until LIMIT @limit)
                 ) ORDER BY due, seq LIMIT @limit)
                 RETURNING *, (SELECT m.payload FROM messages m WHERE deliveries.subject_kind = 'message' AND m.id = deliveries.subject_id) AS payload`,
              ).all({ leaseUntil: at + leaseMs, token, now: at, busy: JSON.stringify(busyEndpoints), limit }) as (Row & { payload: Buffer | null })[],
            )
            .immediate(),
        ),
      );
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
