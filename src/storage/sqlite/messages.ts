import type { CompletedRequest, MessageRecord, MessageStore, NewDelivery } from '../deliveryStore.ts';
import { completeIdempotency } from './idempotency.ts';
import { afterSeq, seqPage } from './seqPage.ts';
import type { SqliteDb } from './store.ts';
import { guard, statementCache } from './store.ts';

interface Row {
  seq: number;
  id: string;
  event_type: string;
  payload: Buffer;
  created_at: number;
}

const toRecord = (row: Row): MessageRecord => ({ id: row.id, eventType: row.event_type, payload: row.payload, createdAt: new Date(row.created_at) });

/** Inserts deliveries inside the caller's transaction; the same cause routes an endpoint once. */
export function insertDeliveries(db: SqliteDb, deliveries: NewDelivery[], now: number): number {
  const insert = statementCache(db)(
    `INSERT INTO deliveries (id, endpoint_id, subject_kind, subject_id, cause_id, event_type, status, next_attempt_at, created_at, updated_at)
     VALUES (@id, @endpointId, @subjectKind, @subjectId, @causeId, @eventType, 'pending', @nextAttemptAt, @now, @now)
     ON CONFLICT (endpoint_id, subject_id, cause_id) DO NOTHING`,
  );
  let created = 0;
  for (const d of deliveries) created += insert.run({ ...d, nextAttemptAt: d.nextAttemptAt.getTime(), now }).changes;
  return created;
}

/** Inserts a message and its deliveries inside the caller's transaction. */
export function insertMessage(db: SqliteDb, m: MessageRecord, deliveries: NewDelivery[]): void {
  statementCache(db)('INSERT INTO messages (id, event_type, payload, created_at) VALUES (?, ?, ?, ?)').run(m.id, m.eventType, m.payload, m.createdAt.getTime());
  insertDeliveries(db, deliveries, m.createdAt.getTime());
}

export function createSqliteMessageStore(db: SqliteDb): MessageStore {
  const sql = statementCache(db);
  const createTx = db.transaction((m: MessageRecord, deliveries: NewDelivery[], idempotency: CompletedRequest | undefined) => {
    insertMessage(db, m, deliveries);
    if (idempotency) completeIdempotency(db, idempotency.scope, { response: idempotency.response });
  });
  return {
    async create(message, deliveries, idempotency) {
      guard(() => createTx.immediate(message, deliveries, idempotency));
    },
    async get(id) {
      return guard(() => {
        const row = sql('SELECT * FROM messages WHERE id = ?').get(id) as Row | undefined;
        return row ? toRecord(row) : null;
      });
    },
    async list({ eventType }, { limit, cursor }) {
      const prefix = eventType?.endsWith('.*') ? eventType.slice(0, -1) : null;
      const rows = guard(
        () =>
          sql(
            `SELECT * FROM messages WHERE seq > @after AND (@exact IS NULL OR event_type = @exact) AND (@prefix IS NULL OR substr(event_type, 1, length(@prefix)) = @prefix)
             ORDER BY seq LIMIT @limit`,
          ).all({ after: afterSeq(cursor), exact: prefix === null ? eventType : null, prefix, limit: limit + 1 }) as Row[],
      );
      return seqPage(rows, limit, toRecord);
    },
  };
}
