import type pg from 'pg';
import type { MessageRecord, MessageStore, NewDelivery } from '../deliveryStore.ts';
import { completeIdempotency } from './idempotency.ts';
import { listPage } from './listPage.ts';
import type { Queryable } from './store.ts';
import { guardPg, inTransaction } from './store.ts';

interface Row {
  seq: string;
  id: string;
  event_type: string;
  payload: Buffer;
  created_at: Date;
}

const toRecord = (row: Row): MessageRecord => ({ id: row.id, eventType: row.event_type, payload: row.payload, createdAt: row.created_at });

/** Inserts deliveries in one statement on `db` (a pool, or the caller's transaction); the same cause routes an endpoint once. */
/** Inserts a message and its deliveries inside the caller's transaction. */
export async function insertMessage(db: Queryable, m: MessageRecord, deliveries: NewDelivery[]): Promise<void> {
  await db.query('INSERT INTO messages (id, event_type, payload, created_at) VALUES ($1, $2, $3, $4)', [m.id, m.eventType, m.payload, m.createdAt]);
  await insertDeliveries(db, deliveries, m.createdAt);
}

export async function insertDeliveries(db: Queryable, deliveries: NewDelivery[], now: Date): Promise<number> {
  if (deliveries.length === 0) return 0;
  const res = await db.query(
    `INSERT INTO deliveries (id, endpoint_id, subject_kind, subject_id, cause_id, event_type, status, next_attempt_at, created_at, updated_at)
     SELECT id, endpoint_id, subject_kind, subject_id, cause_id, event_type, 'pending', next_attempt_at, $8, $8
     FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::timestamptz[]) AS d(id, endpoint_id, subject_kind, subject_id, cause_id, event_type, next_attempt_at)
     ON CONFLICT (endpoint_id, subject_id, cause_id) DO NOTHING`,
    [
      deliveries.map((d) => d.id),
      deliveries.map((d) => d.endpointId),
      deliveries.map((d) => d.subjectKind),
      deliveries.map((d) => d.subjectId),
      deliveries.map((d) => d.causeId),
      deliveries.map((d) => d.eventType),
      deliveries.map((d) => d.nextAttemptAt),
      now,
    ],
  );
  return res.rowCount ?? 0;
}

export function createPostgresMessageStore(pool: pg.Pool): MessageStore {
  return {
    async create(m, deliveries, idempotency) {
      await inTransaction(pool, async (client) => {
        await insertMessage(client, m, deliveries);
        if (idempotency) await completeIdempotency(client, idempotency.scope, { response: idempotency.response });
      });
    },
    async get(id) {
      return guardPg(async () => {
        const res = await pool.query<Row>('SELECT * FROM messages WHERE id = $1', [id]);
        return res.rows[0] ? toRecord(res.rows[0]) : null;
      });
    },
    async list({ eventType }, { limit, cursor }) {
      const prefix = eventType?.endsWith('.*') ? eventType.slice(0, -1) : null;
      return listPage<Row, MessageRecord>(pool, {
        table: 'messages',
        columns: 'seq, txid, id, event_type, payload, created_at',
        where: '($4::text IS NULL OR event_type = $4) AND ($5::text IS NULL OR starts_with(event_type, $5))',
        params: [prefix === null ? eventType : null, prefix],
        limit,
        cursor,
        map: toRecord,
      });
    },
  };
}
