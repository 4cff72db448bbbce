import type pg from 'pg';
import type { UsageRow, UsageStore } from '../store.ts';
import { decodeUsageCursor, usagePage } from '../usageCursor.ts';
import { guardPg, inTransaction } from './store.ts';

export function createPostgresUsageStore(pool: pg.Pool): UsageStore {
  return {
    async record(batchId, deltas, now) {
      return inTransaction(pool, async (client) => {
        const fresh = await client.query('INSERT INTO usage_batches (id, recorded_at) VALUES ($1, $2) ON CONFLICT DO NOTHING', [batchId, now]);
        if (fresh.rowCount === 0) return false;
        if (deltas.length === 0) return true;
        // One statement for the whole batch; sorted so concurrent flushes lock rows in the same order.
        const sorted = [...deltas].sort((a, b) => (a.keyId + a.day + a.route < b.keyId + b.day + b.route ? -1 : 1));
        await client.query(
          `INSERT INTO usage_daily (key_id, day, route, requests, units)
           SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[])
           ON CONFLICT (key_id, day, route) DO UPDATE
             SET requests = usage_daily.requests + excluded.requests, units = usage_daily.units + excluded.units`,
          [sorted.map((d) => d.keyId), sorted.map((d) => d.day), sorted.map((d) => d.route), sorted.map((d) => d.requests), sorted.map((d) => d.units)],
        );
        return true;
      });
    },
    async units(keyId, fromDay, toDay) {
      return guardPg(async () => {
        const res = await pool.query<{ u: string }>('SELECT coalesce(sum(units), 0) AS u FROM usage_daily WHERE key_id = $1 AND day BETWEEN $2 AND $3', [keyId, fromDay, toDay]);
        return Number(res.rows[0]!.u);
      });
    },
    async query(q) {
      const after = decodeUsageCursor(q.cursor);
      const period = q.granularity === 'month' ? 'substr(day, 1, 7)' : 'day';
      return guardPg(async () => {
        const res = await pool.query<{ period: string; key_id: string; route: string; requests: string; units: string }>(
          `SELECT * FROM (
             SELECT ${period} AS period, key_id, route, sum(requests) AS requests, sum(units) AS units
             FROM usage_daily
             WHERE day BETWEEN $1 AND $2 AND ($3::text IS NULL OR key_id = $3) AND ($4::text IS NULL OR route = $4)
             GROUP BY 1, 2, 3) AS grouped
           WHERE $5::text IS NULL OR (period, key_id, route) > ($5::text, $6::text, $7::text)
           ORDER BY period, key_id, route LIMIT $8`,
          [q.fromDay, q.toDay, q.keyId, q.route, ...(after ?? [null, null, null]), q.limit + 1],
        );
        const rows: UsageRow[] = res.rows.map((r) => ({ period: r.period, keyId: r.key_id, route: r.route, requests: Number(r.requests), units: Number(r.units) }));
        return usagePage(rows, q.limit);
      });
    },
    async deleteBatchesBefore(before) {
      return guardPg(async () => (await pool.query('DELETE FROM usage_batches WHERE recorded_at < $1', [before])).rowCount ?? 0);
    },
  };
}
