import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import type { DeliveryAttempt, DeliveryFilter, DeliveryRecord, DeliveryStatus, DeliveryStore } from '../deliveryStore.ts';
import { listPage } from './listPage.ts';
import { createGroupCommit } from '../groupCommit.ts';
import { PG_FINISH_MAX_IN_FLIGHT, finishDeliveries } from './finishDeliveries.ts';
import type { Finish } from './finishDeliveries.ts';
import { insertDeliveries } from './messages.ts';
import { guardPg } from './store.ts';

interface Row {
  seq: string;
  id: string;
  endpoint_id: string;
  subject_kind: 'message' | 'event';
  subject_id: string;
  event_type: string;
  status: DeliveryStatus;
  attempts: number;
  round_attempts: number;
  next_attempt_at: Date;
  last_error: string | null;
  created_at: Date;
  updated_at: Date;
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
    nextAttemptAt: row.status === 'pending' ? row.next_attempt_at : null,
    lastError: row.last_error,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

/** The delivery filter over parameters $n … $n+4. */
function filterSql(n: number): string {
  return `($${n}::text IS NULL OR endpoint_id = $${n}) AND ($${n + 1}::text IS NULL OR subject_id = $${n + 1}) AND ($${n + 2}::text IS NULL OR status = $${n + 2})
    AND ($${n + 3}::timestamptz IS NULL OR created_at >= $${n + 3}) AND ($${n + 4}::timestamptz IS NULL OR created_at < $${n + 4})`;
}
const filterParams = (f: DeliveryFilter): unknown[] => [f.endpointId, f.subjectId, f.status, f.from, f.to];

/**
 * `claimPool`: connections set for lease claims (see openPostgresStore), which
 * also save outcomes: an outcome lost in a crash of the server leaves its
 * delivery leased or pending, so it is sent again (at least once), never lost.
 */
export function createPostgresDeliveryStore(pool: pg.Pool, claimPool: pg.Pool): DeliveryStore {
  const finishes = createGroupCommit({ commit: (items: Finish[]) => finishDeliveries(claimPool, items), weigh: () => 0, maxInFlight: PG_FINISH_MAX_IN_FLIGHT });
  return {
    async createMany(deliveries, now) {
      return guardPg(() => insertDeliveries(pool, deliveries, now));
    },
    async claim({ limit, leaseMs, now, skipEndpoints }) {
      const token = randomUUID();
      return guardPg(async () => {
        const res = await claimPool.query<Row & { payload: Buffer | null }>(
          // Due deliveries and expired leases read apart, each in the order of its partial index up to
          // the limit (one OR over both would collect every due delivery and sort them on each claim).
          // Endpoints are not joined nor looked up per row: the ones to skip (busy here, or disabled)
          // are gathered once into an array each row is checked against (a join let the planner
          // collect and sort every due delivery). A delivery whose endpoint is gone is claimed too,
          // and dead-lettered by the dispatcher rather than left waiting.
          `WITH skip AS (
             SELECT $4::text[] || ARRAY(SELECT id FROM endpoints WHERE NOT enabled) AS skipped
           ), expired AS (
             SELECT id, lease_until AS due, seq FROM deliveries d2
             WHERE status = 'sending' AND lease_until <= $3 AND NOT (endpoint_id = ANY((SELECT skipped FROM skip)::text[]))
             ORDER BY lease_until LIMIT $5 FOR UPDATE SKIP LOCKED
           ), pending AS (
             SELECT id, next_attempt_at AS due, seq FROM deliveries d2
             WHERE status = 'pending' AND next_attempt_at <= $3 AND NOT (endpoint_id = ANY((SELECT skipped FROM skip)::text[]))
             ORDER BY next_attempt_at, seq LIMIT $5 FOR UPDATE SKIP LOCKED
           )
           UPDATE deliveries d SET status = 'sending', attempts = d.attempts + 1, round_attempts = d.round_attempts + 1, lease_until = $1, lease_token = $2, updated_at = $3
           WHERE d.id IN (SELECT id FROM (SELECT * FROM expired UNION ALL SELECT * FROM pending) c ORDER BY due, seq LIMIT $5)
           RETURNING d.*, (SELECT m.payload FROM messages m WHERE d.subject_kind = 'message' AND m.id = d.subject_id) AS payload`,
          [new Date(now.getTime() + leaseMs), token, now, skipEndpoints, limit],
        );
        return res.rows.map((r) => ({
          id: r.id,
          endpointId: r.endpoint_id,
          subjectKind: r.subject_kind,
          subjectId: r.subject_id,
          eventType: r.event_type,
          attempt: r.attempts,
          roundAttempt: r.round_attempts,
          leaseToken: token,
          createdAt: r.created_at,
          ...(r.payload ? { payload: r.payload } : {}),
        }));
      });
    },
    async recordSent(d, a, now) {
      await guardPg(() =>
        pool.query(
          `WITH d AS (
             INSERT INTO deliveries (id, endpoint_id, subject_kind, subject_id, cause_id, event_type, status, attempts, round_attempts, next_attempt_at, last_error, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, 1, 1, $8, $9, $8, $8) RETURNING id
           )
           INSERT INTO delivery_attempts (delivery_id, attempt, started_at, finished_at, status_code, latency_ms, response_body, error, outcome)
           SELECT id, 1, $10, $11, $12, $13, $14, $9, $15 FROM d`,
          [d.id, d.endpointId, d.subjectKind, d.subjectId, d.causeId, d.eventType, a.outcome === 'succeeded' ? 'succeeded' : 'dead', now, a.error, a.startedAt, a.finishedAt, a.statusCode, a.latencyMs, a.responseBody, a.outcome],
        ),
      );
    },
    async finish(delivery, outcome, attempt, now) {
      return finishes.add({ delivery, outcome, attempt, now });
    },
    async get(id) {
      return guardPg(async () => {
        const res = await pool.query<Row>('SELECT * FROM deliveries WHERE id = $1', [id]);
        return res.rows[0] ? toRecord(res.rows[0]) : null;
      });
    },
    async attempts(id) {
      return guardPg(async () => {
        const res = await pool.query<{
          attempt: number;
          started_at: Date;
          finished_at: Date;
          status_code: number | null;
          latency_ms: number;
          response_body: string | null;
          error: string | null;
          outcome: DeliveryAttempt['outcome'];
        }>('SELECT * FROM delivery_attempts WHERE delivery_id = $1 ORDER BY attempt', [id]);
        return res.rows.map((a) => ({
          attempt: a.attempt,
          startedAt: a.started_at,
          finishedAt: a.finished_at,
          statusCode: a.status_code,
          latencyMs: a.latency_ms,
          responseBody: a.response_body,
          error: a.error,
          outcome: a.outcome,
        }));
      });
    },
    async list(filter, { limit, cursor }) {
      return listPage<Row, DeliveryRecord>(pool, { table: 'deliveries', where: filterSql(4), params: filterParams(filter), limit, cursor, map: toRecord });
    },
    async retry(filter, limit, now) {
      return guardPg(async () => {
        const res = await pool.query(
          `UPDATE deliveries SET status = 'pending', round_attempts = 0, next_attempt_at = $1, updated_at = $1
           WHERE id IN (SELECT id FROM deliveries WHERE status <> 'sending' AND endpoint_id IN (SELECT id FROM endpoints) AND ($2::text[] IS NULL OR id = ANY($2)) AND ${filterSql(4)} ORDER BY seq LIMIT $3 FOR UPDATE SKIP LOCKED)`,
          [now, filter.ids, limit, ...filterParams(filter)],
        );
        return res.rowCount ?? 0;
      });
    },
  };
}
