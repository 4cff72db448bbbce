import { randomBytes } from 'node:crypto';
import { leaseReceipt, pickNew, receiptEventId } from '../../core/consumerGroups.ts';
import type { ConsumerGroupRecord, ConsumerGroupStore, LeaseRequest, LeasedEvent, NewConsumerGroup } from '../store.ts';
import { NameTakenError } from '../store.ts';
import { toRecord as toEventRecord } from './events.ts';
import type { Row as EventRow } from './events.ts';
import { afterSeq, seqPage } from './seqPage.ts';
import type { SqliteDb } from './store.ts';
import { guard, statementCache } from './store.ts';

interface Row {
  seq: number;
  id: string;
  name: string;
  source_id: string | null;
  types: string;
  start_at: number;
  visibility_timeout_ms: number;
  cursor_seq: number;
  created_at: number;
}

interface ScanRow {
  seq: number;
  id: string;
  source_id: string;
  type: string;
  received_at: number;
  body_bytes: number;
}

/** Events read past the cursor per scan step, and scan steps per lease. */
const SCAN_ROWS = 500;
const SCAN_STEPS = 20;

function toRecord(row: Row): ConsumerGroupRecord {
  return {
    id: row.id,
    name: row.name,
    sourceId: row.source_id,
    types: JSON.parse(row.types) as string[],
    startAt: new Date(row.start_at),
    visibilityTimeoutMs: row.visibility_timeout_ms,
    createdAt: new Date(row.created_at),
  };
}

export function createSqliteConsumerGroupStore(db: SqliteDb): ConsumerGroupStore {
  const sql = statementCache(db);

  const createTx = db.transaction((g: NewConsumerGroup): Row => {
    // Writers are serialised, so the newest seq now is where "now" starts.
    const cursor = g.start === 'now' ? (sql('SELECT coalesce(max(seq), 0) AS s FROM events').get() as { s: number }).s : 0;
    return sql(
      `INSERT INTO consumer_groups (id, name, source_id, types, start_at, visibility_timeout_ms, cursor_seq, created_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING *`,
    ).get(g.id, g.name, g.sourceId, JSON.stringify(g.types), (g.start === 'now' ? g.now : g.start).getTime(), g.visibilityTimeoutMs, cursor, g.now.getTime()) as Row;
  });

  const leaseTx = db.transaction((groupId: string, r: LeaseRequest): LeasedEvent[] => {
    const row = sql('SELECT * FROM consumer_groups WHERE id = ?').get(groupId) as Row | undefined;
    if (!row) return [];
    const group = toRecord(row);
    const now = r.now.getTime();
    const visibleAt = now + r.visibilityMs;
    const token = randomBytes(12).toString('base64url');
    const handed: { eventId: string; deliveries: number }[] = [];

    // Events whose lease ran out or that were nacked, oldest first.
    const again = sql(
      `SELECT p.event_id, p.deliveries, length(e.body) AS body_bytes FROM consumer_group_pending p JOIN events e ON e.id = p.event_id
       WHERE p.group_id = ? AND p.visible_at <= ? ORDER BY p.event_seq LIMIT ?`,
    ).all(groupId, now, r.max) as { event_id: string; deliveries: number; body_bytes: number | null }[];
    let bytes = 0;
    const relet = sql('UPDATE consumer_group_pending SET receipt = ?, deliveries = deliveries + 1, visible_at = ? WHERE group_id = ? AND event_id = ?');
    for (const p of again) {
      if (handed.length > 0 && bytes + (p.body_bytes ?? 0) > r.maxBytes) break;
      bytes += p.body_bytes ?? 0;
      relet.run(leaseReceipt(p.event_id, token), visibleAt, groupId, p.event_id);
      handed.push({ eventId: p.event_id, deliveries: p.deliveries + 1 });
    }

    // Then new events past the cursor.
    let cursor = row.cursor_seq;
    const scan = sql('SELECT seq, id, source_id, type, received_at, coalesce(length(body), 0) AS body_bytes FROM events WHERE seq > ? ORDER BY seq LIMIT ?');
    const track = sql('INSERT INTO consumer_group_pending (group_id, event_id, event_seq, receipt, deliveries, visible_at) VALUES (?, ?, ?, ?, 1, ?) ON CONFLICT DO NOTHING');
    for (let step = 0; step < SCAN_STEPS && handed.length < r.max; step++) {
      const scanned = (scan.all(cursor, SCAN_ROWS) as ScanRow[]).map((s) => ({ ...s, sourceId: s.source_id, receivedAt: new Date(s.received_at), bodyBytes: s.body_bytes }));
      const { taken, consumed } = pickNew(group, scanned, { count: r.max - handed.length, bytes: r.maxBytes - bytes, any: handed.length > 0 });
      for (const e of taken) {
        track.run(groupId, e.id, e.seq, leaseReceipt(e.id, token), visibleAt);
        handed.push({ eventId: e.id, deliveries: 1 });
        bytes += e.bodyBytes;
      }
      if (consumed > 0) cursor = scanned[consumed - 1]!.seq;
      if (consumed < scanned.length || scanned.length < SCAN_ROWS) break;
    }
    if (cursor !== row.cursor_seq) sql('UPDATE consumer_groups SET cursor_seq = ? WHERE id = ?').run(cursor, groupId);

    const getEvent = sql('SELECT * FROM events WHERE id = ?');
    return handed.map((h) => ({
      receipt: leaseReceipt(h.eventId, token),
      deliveries: h.deliveries,
      visibleAt: new Date(visibleAt),
      event: toEventRecord(getEvent.get(h.eventId) as EventRow),
    }));
  });

  const settleTx = db.transaction((groupId: string, receipts: string[], visibleAt: number | null): string[] => {
    const ack = sql('DELETE FROM consumer_group_pending WHERE group_id = ? AND event_id = ? AND receipt = ?');
    const nack = sql('UPDATE consumer_group_pending SET receipt = NULL, visible_at = ? WHERE group_id = ? AND event_id = ? AND receipt = ?');
    return receipts.filter((receipt) => {
      const eventId = receiptEventId(receipt);
      return (visibleAt === null ? ack.run(groupId, eventId, receipt) : nack.run(visibleAt, groupId, eventId, receipt)).changes > 0;
    });
  });

  return {
    async create(g) {
      return guard(() => {
        try {
          return toRecord(createTx.immediate(g));
        } catch (err) {
          if ((err as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE' && /consumer_groups\.name/.test((err as Error).message)) throw new NameTakenError();
          throw err;
        }
      });
    },
    async find(idOrName) {
      return guard(() => {
        const row = sql('SELECT * FROM consumer_groups WHERE id = ? OR name = ?').get(idOrName, idOrName) as Row | undefined;
        return row ? toRecord(row) : null;
      });
    },
    async list({ limit, cursor }) {
      const after = afterSeq(cursor);
      return seqPage(guard(() => sql('SELECT * FROM consumer_groups WHERE seq > ? ORDER BY seq LIMIT ?').all(after, limit + 1) as Row[]), limit, toRecord);
    },
    async delete(id) {
      return guard(() =>
        db.transaction(() => {
          sql('DELETE FROM consumer_group_pending WHERE group_id = ?').run(id);
          return sql('DELETE FROM consumer_groups WHERE id = ?').run(id).changes > 0;
        }).immediate(),
      );
    },
    async lease(groupId, request) {
      return guard(() => leaseTx.immediate(groupId, request));
    },
    async ack(groupId, receipts) {
      return guard(() => settleTx.immediate(groupId, receipts, null));
    },
    async nack(groupId, receipts, visibleAt) {
      return guard(() => settleTx.immediate(groupId, receipts, visibleAt.getTime()));
    },
    async pending(groupId, now) {
      return guard(() => {
        const row = sql('SELECT count(*) AS pending, count(*) FILTER (WHERE receipt IS NOT NULL AND visible_at > ?) AS leased FROM consumer_group_pending WHERE group_id = ?').get(now.getTime(), groupId) as {
          pending: number;
          leased: number;
        };
        return row;
      });
    },
  };
}
