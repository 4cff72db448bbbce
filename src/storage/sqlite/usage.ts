import type { UsageDelta, UsageRow, UsageStore } from '../store.ts';
import { decodeUsageCursor, usagePage } from '../usageCursor.ts';
import type { SqliteDb } from './store.ts';
import { guard, statementCache } from './store.ts';

export function createSqliteUsageStore(db: SqliteDb): UsageStore {
  const sql = statementCache(db);
  const recordTx = db.transaction((batchId: string, deltas: UsageDelta[], now: number) => {
    if (sql('INSERT INTO usage_batches (id, recorded_at) VALUES (?, ?) ON CONFLICT DO NOTHING').run(batchId, now).changes === 0) return false;
    const add = sql(
      `INSERT INTO usage_daily (key_id, day, route, requests, units) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (key_id, day, route) DO UPDATE SET requests = requests + excluded.requests, units = units + excluded.units`,
    );
    for (const d of deltas) add.run(d.keyId, d.day, d.route, d.requests, d.units);
    return true;
  });

  return {
    async record(batchId, deltas, now) {
      return guard(() => recordTx.immediate(batchId, deltas, now.getTime()));
    },
    async units(keyId, fromDay, toDay) {
      return guard(() => (sql('SELECT coalesce(sum(units), 0) AS u FROM usage_daily WHERE key_id = ? AND day BETWEEN ? AND ?').get(keyId, fromDay, toDay) as { u: number }).u);
    },
    async query(q) {
      const after = decodeUsageCursor(q.cursor);
      const period = q.granularity === 'month' ? 'substr(day, 1, 7)' : 'day';
      const rows = guard(
        () =>
          sql(
            `SELECT * FROM (
               SELECT ${period} AS period, key_id AS keyId, route, sum(requests) AS requests, sum(units) AS units
               FROM usage_daily
               WHERE day BETWEEN ? AND ? AND (? IS NULL OR key_id = ?) AND (? IS NULL OR route = ?)
               GROUP BY 1, 2, 3)
             WHERE ? IS NULL OR (period, keyId, route) > (?, ?, ?)
             ORDER BY period, keyId, route LIMIT ?`,
          ).all(q.fromDay, q.toDay, q.keyId, q.keyId, q.route, q.route, after && 1, ...(after ?? [null, null, null]), q.limit + 1) as UsageRow[],
      );
      return usagePage(rows, q.limit);
    },
    async deleteBatchesBefore(before) {
      return guard(() => sql('DELETE FROM usage_batches WHERE recorded_at < ?').run(before.getTime()).changes);
    },
  };
}
