import type pg from 'pg';
import type { BatchOutcome } from '../groupCommit.ts';
import type { ClaimedDelivery, DeliveryAttempt, DeliveryOutcome } from '../deliveryStore.ts';
import { commitEachOnRefusal } from './eachAlone.ts';
import { guardPg } from './store.ts';

export interface Finish {
  delivery: ClaimedDelivery;
  outcome: DeliveryOutcome;
  attempt: DeliveryAttempt | null;
  now: Date;
}

/** Finish statements running at once (what finishes meanwhile goes in the next one). */
export const PG_FINISH_MAX_IN_FLIGHT = 2;

/**
 * The outcomes of deliveries finishing together, saved by one statement (one
 * round trip, atomic): each delivery is updated only while its lease holds, and
 * its attempt is recorded only if it was. Batched for the same reason as ingest
 * (../groupCommit.ts): a statement per delivery held a pooled connection each.
 */
export async function finishDeliveries(pool: pg.Pool, items: Finish[]): Promise<BatchOutcome<boolean>[]> {
  // One outcome the server refuses must not hold the others back: they would be sent again when their leases end.
  return commitEachOnRefusal(items, (some) => finishTogether(pool, some));
}

async function finishTogether(pool: pg.Pool, items: Finish[]): Promise<BatchOutcome<boolean>[]> {
  const withAttempt = items.filter((f) => f.attempt !== null);
  const res = await guardPg(() =>
    pool.query<{ id: string }>(
      `WITH v AS (
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::text[], $6::boolean[], $7::integer[], $8::timestamptz[])
           AS v(id, token, status, at, error, keep_error, uncount, now)
       ), changed AS (
         UPDATE deliveries d SET status = v.status, next_attempt_at = coalesce(v.at, d.next_attempt_at),
           last_error = CASE WHEN v.keep_error THEN d.last_error ELSE v.error END,
           attempts = d.attempts - v.uncount, round_attempts = d.round_attempts - v.uncount,
           lease_until = NULL, lease_token = NULL, updated_at = v.now
         FROM v WHERE d.id = v.id AND d.lease_token = v.token AND d.status = 'sending'
         RETURNING d.id
       ), recorded AS (
         INSERT INTO delivery_attempts (delivery_id, attempt, started_at, finished_at, status_code, latency_ms, response_body, error, outcome)
         SELECT * FROM unnest($9::text[], $10::integer[], $11::timestamptz[], $12::timestamptz[], $13::integer[], $14::integer[], $15::text[], $16::text[], $17::text[])
           AS a(delivery_id, attempt, started_at, finished_at, status_code, latency_ms, response_body, error, outcome)
         WHERE a.delivery_id IN (SELECT id FROM changed)
       )
       SELECT id FROM changed`,
      [
        items.map((f) => f.delivery.id),
        items.map((f) => f.delivery.leaseToken),
        items.map((f) => (f.outcome.kind === 'succeeded' ? 'succeeded' : f.outcome.kind === 'dead' ? 'dead' : 'pending')),
        items.map((f) => ('nextAttemptAt' in f.outcome ? f.outcome.nextAttemptAt : null)),
        items.map((f) => ('error' in f.outcome ? f.outcome.error : null)),
        items.map((f) => f.outcome.kind === 'postponed'),
        // Finished without an attempt (postponed, or its endpoint deleted): the claim's count is taken back.
        items.map((f) => (f.attempt === null ? 1 : 0)),
        items.map((f) => f.now),
        withAttempt.map((f) => f.delivery.id),
        withAttempt.map((f) => f.attempt!.attempt),
        withAttempt.map((f) => f.attempt!.startedAt),
        withAttempt.map((f) => f.attempt!.finishedAt),
        withAttempt.map((f) => f.attempt!.statusCode),
        withAttempt.map((f) => f.attempt!.latencyMs),
        withAttempt.map((f) => f.attempt!.responseBody),
        withAttempt.map((f) => f.attempt!.error),
        withAttempt.map((f) => f.attempt!.outcome),
      ],
    ),
  );
  const changed = new Set(res.rows.map((r) => r.id));
  return items.map((f) => ({ ok: true, value: changed.has(f.delivery.id) }));
}
