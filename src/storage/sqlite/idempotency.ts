import type { IdempotencyOutcome, IdempotencyScope, IdempotencyStore, StoredResponse } from '../store.ts';
import { toIdempotencyRecord } from '../idempotencyRecord.ts';
import type { SqliteDb } from './store.ts';
import { guard, statementCache } from './store.ts';

interface Row {
  request_hash: string;
  state: 'in-flight' | 'completed' | 'completed-secret';
  response: string | null;
  resource_id: string | null;
  created_at: number;
  updated_at: number;
}

const WHERE = 'key_id = ? AND idempotency_key = ? AND method = ? AND path = ?';

/** Completes a claim inside the caller's transaction (with the write the response describes). */
export function completeIdempotency(db: SqliteDb, s: IdempotencyScope, outcome: IdempotencyOutcome): void {
  const secret = 'resourceId' in outcome;
  statementCache(db)(`UPDATE idempotency_records SET state = ?, response = ?, resource_id = ?, updated_at = ? WHERE ${WHERE}`).run(
    secret ? 'completed-secret' : 'completed',
    secret ? null : JSON.stringify(outcome.response),
    secret ? outcome.resourceId : null,
    Date.now(),
    s.keyId,
    s.idempotencyKey,
    s.method,
    s.path,
  );
}

export function createSqliteIdempotencyStore(db: SqliteDb): IdempotencyStore {
  const sql = statementCache(db);
  const beginTx = db.transaction((scope: unknown[], hash: string, now: number, staleBefore: number, expiredBefore: number) => {
    const row = sql(`SELECT * FROM idempotency_records WHERE ${WHERE}`).get(...scope) as Row | undefined;
    const takeOver = row && (row.created_at < expiredBefore || (row.state === 'in-flight' && row.updated_at < staleBefore));
    if (row && !takeOver) {
      const response = row.response === null ? null : (JSON.parse(row.response) as StoredResponse);
      return toIdempotencyRecord({ ...row, response, updated_at: new Date(row.updated_at) });
    }
    if (row) sql(`DELETE FROM idempotency_records WHERE ${WHERE}`).run(...scope);
    sql(
      `INSERT INTO idempotency_records (key_id, idempotency_key, method, path, request_hash, state, created_at, updated_at)
       VALUES (?, ?, ?, ?, ?, 'in-flight', ?, ?)`,
    ).run(...scope, hash, now, now);
    return null;
  });

  return {
    async begin(s, hash, now, staleBefore, expiredBefore) {
      const scope = [s.keyId, s.idempotencyKey, s.method, s.path];
      return guard(() => beginTx.immediate(scope, hash, now.getTime(), staleBefore.getTime(), expiredBefore.getTime()));
    },
    async complete(s, outcome) {
      guard(() => completeIdempotency(db, s, outcome));
    },
    async release(s) {
      guard(() => sql(`DELETE FROM idempotency_records WHERE ${WHERE} AND state = 'in-flight'`).run(s.keyId, s.idempotencyKey, s.method, s.path));
    },
    async deleteExpired(before) {
      return guard(() => sql('DELETE FROM idempotency_records WHERE created_at < ?').run(before.getTime()).changes);
    },
  };
}
