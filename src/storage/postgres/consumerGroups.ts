import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import { leaseReceipt, pickNew, receiptEventId } from '../../core/consumerGroups.ts';
import type { ConsumerGroupRecord, ConsumerGroupStore, LeasedEvent } from '../store.ts';
import { NameTakenError } from '../store.ts';
import { toRecord as toEventRecord } from './events.ts';
import type { Row as EventRow } from './events.ts';
import { listPage } from './listPage.ts';
import { guardPg, inTransaction } from './store.ts';

interface Row {
  seq: string;
  id: string;
  name: string;
  source_id: string | null;
  types: string[];
  start_at: Date;
  visibility_timeout_ms: number;
  cursor_txid: string;
  cursor_seq: string;
  created_at: Date;
}

interface ScanRow {
  txid: string;
  seq: string;
  id: string;
  source_id: string;
  type: string;
  received_at: Date;
  body_bytes: number;
}

/** Events read past the cursor per scan step, and scan steps per lease. */
const SCAN_ROWS = 500;
const SCAN_STEPS = 20;

/**
 * Events of transactions older than every transaction still running. Sequence
 * numbers are taken before commit, so a row with a lower seq (or txid) can
 * become visible after a higher one: reading only below the snapshot's xmin
 * means nothing can ever commit behind the cursor.
 */
const SETTLED = 'txid < pg_snapshot_xmin(pg_current_snapshot())';

function toRecord(row: Row): ConsumerGroupRecord {
  return {
    id: row.id,
    name: row.name,
    sourceId: row.source_id,
    types: row.types,
    startAt: row.start_at,
    visibilityTimeoutMs: row.visibility_timeout_ms,
    createdAt: row.created_at,
  };
}

export function createPostgresConsumerGroupStore(pool: pg.Pool): ConsumerGroupStore {
  async function settle(groupId: string, receipts: string[], visibleAt: Date | null): Promise<string[]> {
    return guardPg(async () => {
      const res = await pool.query<{ receipt: string }>(
        visibleAt === null
          ? `DELETE FROM consumer_group_pending p USING unnest($2::text[], $3::text[]) AS r(event_id, receipt)
             WHERE p.group_id = $1 AND p.event_id = r.event_id AND p.receipt = r.receipt RETURNING r.receipt`
          : `UPDATE consumer_group_pending p SET receipt = NULL, visible_at = $4 FROM unnest($2::text[], $3::text[]) AS r(event_id, receipt)
             WHERE p.group_id = $1 AND p.event_id = r.event_id AND p.receipt = r.receipt RETURNING r.receipt`,
        [groupId, receipts.map(receiptEventId), receipts, ...(visibleAt === null ? [] : [visibleAt])],
      );
      const settled = new Set(res.rows.map((r) => r.receipt));
      return receipts.filter((r) => settled.has(r));
    });
  }

  return {
    async create(g) {
      return inTransaction(pool, async (client) => {
        let cursor = { txid: '0', seq: '0' };
        if (g.start === 'now') {
          const last = await client.query<{ txid: string; seq: string }>(`SELECT txid::text, seq FROM events WHERE ${SETTLED} ORDER BY txid DESC, seq DESC LIMIT 1`);
          cursor = last.rows[0] ?? cursor;
        }
        try {
          const res = await client.query<Row>(
            `INSERT INTO consumer_groups (id, name, source_id, types, start_at, visibility_timeout_ms, cursor_txid, cursor_seq, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7::xid8, $8, $9) RETURNING *`,
            [g.id, g.name, g.sourceId, JSON.stringify(g.types), g.start === 'now' ? g.now : g.start, g.visibilityTimeoutMs, cursor.txid, cursor.seq, g.now],
          );
          return toRecord(res.rows[0]!);
        } catch (err) {
          if ((err as { code?: string; constraint?: string }).code === '23505' && (err as { constraint?: string }).constraint === 'consumer_groups_name_key') throw new NameTakenError();
          throw err;
        }
      });
    },
    async find(idOrName) {
      return guardPg(async () => {
        const res = await pool.query<Row>('SELECT * FROM consumer_groups WHERE id = $1 OR name = $1', [idOrName]);
        return res.rows[0] ? toRecord(res.rows[0]) : null;
      });
    },
    async list({ limit, cursor }) {
      return listPage<Row, ConsumerGroupRecord>(pool, { table: 'consumer_groups', limit, cursor, map: toRecord });
    },
    async delete(id) {
      return inTransaction(pool, async (client) => {
        await client.query('DELETE FROM consumer_group_pending WHERE group_id = $1', [id]);
        return ((await client.query('DELETE FROM consumer_groups WHERE id = $1', [id])).rowCount ?? 0) > 0;
      });
    },
    async lease(groupId, r) {
      return inTransaction(pool, async (client) => {
        // One lease of a group at a time: the row lock serialises them.
        const locked = await client.query<Row>('SELECT * FROM consumer_groups WHERE id = $1 FOR UPDATE', [groupId]);
        const row = locked.rows[0];
        if (!row) return [];
        const group = toRecord(row);
        const visibleAt = new Date(r.now.getTime() + r.visibilityMs);
        const token = randomBytes(12).toString('base64url');
        const handed: { eventId: string; deliveries: number }[] = [];

        // Events whose lease ran out or that were nacked, oldest first.
        const again = await client.query<{ event_id: string; deliveries: number; body_bytes: number | null }>(
          `SELECT p.event_id, p.deliveries, octet_length(e.body) AS body_bytes FROM consumer_group_pending p JOIN events e ON e.id = p.event_id
           WHERE p.group_id = $1 AND p.visible_at <= $2 ORDER BY p.event_seq LIMIT $3`,
          [groupId, r.now, r.max],
        );
        let bytes = 0;
        for (const p of again.rows) {
          if (handed.length > 0 && bytes + (p.body_bytes ?? 0) > r.maxBytes) break;
          bytes += p.body_bytes ?? 0;
          handed.push({ eventId: p.event_id, deliveries: p.deliveries + 1 });
        }
        if (handed.length > 0) {
          await client.query(
            `UPDATE consumer_group_pending SET receipt = event_id || '.' || $3::text, deliveries = deliveries + 1, visible_at = $4
             WHERE group_id = $1 AND event_id = ANY($2::text[])`,
            [groupId, handed.map((h) => h.eventId), token, visibleAt],
          );
        }

        // Then new events past the cursor.
        let cursor = { txid: row.cursor_txid, seq: row.cursor_seq };
        const taken: ScanRow[] = [];
        for (let step = 0; step < SCAN_STEPS && handed.length + taken.length < r.max; step++) {
          const scan = await client.query<ScanRow>(
            `SELECT txid::text, seq, id, source_id, type, received_at, coalesce(octet_length(body), 0) AS body_bytes FROM events
             WHERE (txid, seq) > ($1::xid8, $2::bigint) AND ${SETTLED} ORDER BY txid, seq LIMIT $3`,
            [cursor.txid, cursor.seq, SCAN_ROWS],
          );
          const scanned = scan.rows.map((s) => ({ ...s, sourceId: s.source_id, receivedAt: s.received_at, bodyBytes: s.body_bytes }));
          const picked = pickNew(group, scanned, { count: r.max - handed.length - taken.length, bytes: r.maxBytes - bytes, any: handed.length + taken.length > 0 });
          for (const e of picked.taken) {
            taken.push(e);
            bytes += e.bodyBytes;
          }
          if (picked.consumed > 0) cursor = { txid: scanned[picked.consumed - 1]!.txid, seq: scanned[picked.consumed - 1]!.seq };
          if (picked.consumed < scanned.length || scanned.length < SCAN_ROWS) break;
        }
        if (taken.length > 0) {
          await client.query(
            `INSERT INTO consumer_group_pending (group_id, event_id, event_seq, receipt, deliveries, visible_at)
             SELECT $1, e, s, e || '.' || $4::text, 1, $5 FROM unnest($2::text[], $3::bigint[]) AS t(e, s) ON CONFLICT DO NOTHING`,
            [groupId, taken.map((e) => e.id), taken.map((e) => e.seq), token, visibleAt],
          );
          for (const e of taken) handed.push({ eventId: e.id, deliveries: 1 });
        }
        if (cursor.txid !== row.cursor_txid || cursor.seq !== row.cursor_seq) {
          await client.query('UPDATE consumer_groups SET cursor_txid = $2::xid8, cursor_seq = $3 WHERE id = $1', [groupId, cursor.txid, cursor.seq]);
        }

        if (handed.length === 0) return [];
        const events = await client.query<EventRow>('SELECT * FROM events WHERE id = ANY($1::text[])', [handed.map((h) => h.eventId)]);
        const byId = new Map(events.rows.map((e) => [e.id, toEventRecord(e)]));
        return handed.map((h): LeasedEvent => ({ receipt: leaseReceipt(h.eventId, token), deliveries: h.deliveries, visibleAt, event: byId.get(h.eventId)! }));
      });
    },
    async ack(groupId, receipts) {
      return settle(groupId, receipts, null);
    },
    async nack(groupId, receipts, visibleAt) {
      return settle(groupId, receipts, visibleAt);
    },
    async pending(groupId, now) {
      return guardPg(async () => {
        const res = await pool.query<{ pending: number; leased: number }>(
          'SELECT count(*)::int AS pending, (count(*) FILTER (WHERE receipt IS NOT NULL AND visible_at > $2))::int AS leased FROM consumer_group_pending WHERE group_id = $1',
          [groupId, now],
        );
        return res.rows[0]!;
      });
    },
  };
}
