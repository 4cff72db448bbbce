import type pg from 'pg';
import type { IdempotencyOutcome, IdempotencyScope, IdempotencyStore, StoredResponse } from '../store.ts';
import { toIdempotencyRecord } from '../idempotencyRecord.ts';
import type { Queryable } from './store.ts';
import { guardPg, inTransaction } from './store.ts';

const WHERE = 'key_id = $1 AND idempotency_key = $2 AND method = $3 AND path = $4';

/** Completes a claim inside the caller's transaction (with the write the response describes). */
export async function completeIdempotency(db: Queryable, s: IdempotencyScope, outcome: IdempotencyOutcome): Promise<void> {
  const secret = 'resourceId' in outcome;
  await db.query(`UPDATE idempotency_records SET state = $5, response = $6, resource_id = $7, updated_at = now() WHERE ${WHERE}`, [
    s.keyId,
    s.idempotencyKey,
    s.method,
    s.path,
    secret ? 'completed-secret' : 'completed',
    secret ? null : JSON.stringify(outcome.response),
    secret ? outcome.resourceId : null,
  ]);
}

export function createPostgresIdempotencyStore(pool: pg.Pool): IdempotencyStore {
  return {
    async begin(s, hash, now, staleBefore, expiredBefore) {
      const scope = [s.keyId, s.idempotencyKey, s.method, s.path];
      return inTransaction(pool, async (client) => {
        const inserted = await client.query(
          `INSERT INTO idempotency_records (key_id, idempotency_key, method, path, request_hash, state, created_at, updated_at)
           VALUES ($1, $2, $3, $4, $5, 'in-flight', $6, $6) ON CONFLICT DO NOTHING`,
          [...scope, hash, now],
        );
        if (inserted.rowCount === 1) return null;
        const res = await client.query<{ request_hash: string; state: string; response: StoredResponse | null; resource_id: string | null; created_at: Date; updated_at: Date }>(
          `SELECT * FROM idempotency_records WHERE ${WHERE} FOR UPDATE`,
          scope,
        );
        const row = res.rows[0];
        if (!row) return null;
        const takeOver = row.created_at < expiredBefore || (row.state === 'in-flight' && row.updated_at < staleBefore);
        if (!takeOver) return toIdempotencyRecord(row);
        await client.query(
          `UPDATE idempotency_records SET request_hash = $5, state = 'in-flight', response = NULL, resource_id = NULL, created_at = $6, updated_at = $6 WHERE ${WHERE}`,
          [...scope, hash, now],
        );
        return null;
      });
    },
    async complete(s, outcome) {
      await guardPg(() => completeIdempotency(pool, s, outcome));
    },
    async release(s) {
      await guardPg(() => pool.query(`DELETE FROM idempotency_records WHERE ${WHERE} AND state = 'in-flight'`, [s.keyId, s.idempotencyKey, s.method, s.path]));
    },
    async deleteExpired(before) {
      return guardPg(async () => (await pool.query('DELETE FROM idempotency_records WHERE created_at < $1', [before])).rowCount ?? 0);
    },
  };
}
