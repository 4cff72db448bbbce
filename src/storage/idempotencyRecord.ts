import type { IdempotencyRecord, StoredResponse } from './store.ts';

/** Row-to-record mapping shared by both engines. */
export function toIdempotencyRecord(row: { request_hash: string; state: string; response: StoredResponse | null; resource_id: string | null; updated_at: Date }): IdempotencyRecord {
  if (row.state === 'completed' && row.response) return { state: 'completed', requestHash: row.request_hash, response: row.response };
  if (row.state === 'completed-secret') return { state: 'completed-secret', requestHash: row.request_hash, resourceId: row.resource_id };
  return { state: 'in-flight', requestHash: row.request_hash, startedAt: row.updated_at };
}
