import { decodeCursor, encodeCursor } from '../../core/cursor.ts';
import type { Page } from '../../core/cursor.ts';
import { InvalidCursorError } from '../store.ts';
import type { Queryable } from './store.ts';
import { guardPg } from './store.ts';

/**
 * Keyset paging that never skips a row committing late. On PostgreSQL a row can
 * take a seq below the cursor and commit after the page was read. The cursor
 * therefore keeps the snapshot its page was read under: the next page returns
 * rows above the last seq, plus rows at or below it that the snapshot could not
 * see ("late" rows, few: those of transactions then in flight).
 *
 * The table needs `seq` (identity) and `txid xid8 DEFAULT pg_current_xact_id()`
 * with an index on txid. `columns` picks what to read (all by default); `where` may add filters over the table's columns,
 * using parameters from $4 on.
 */
export async function listPage<Row extends { seq: string | number }, T>(
  db: Queryable,
  opts: { table: string; columns?: string; where?: string; params?: unknown[]; limit: number; cursor: string | null; map: (row: Row) => T },
): Promise<Page<T>> {
  let after = '0';
  let snapshot: string | null = null;
  if (opts.cursor !== null) {
    const c = decodeCursor(opts.cursor);
    if (!c || typeof c.s !== 'string' || !/^\d{1,19}$/.test(c.s) || typeof c.x !== 'string' || !/^\d+:\d+:[\d,]*$/.test(c.x)) {
      throw new InvalidCursorError();
    }
    after = c.s;
    snapshot = c.x;
  }
  const columns = opts.columns ?? '*';
  const filter = opts.where ? `AND (${opts.where})` : '';
  const sql = `
    WITH late AS (
      SELECT ${columns}, true AS late FROM ${opts.table}
      WHERE $2::text IS NOT NULL AND seq <= $1::bigint
        AND txid >= pg_snapshot_xmin($2::pg_snapshot) AND NOT pg_visible_in_snapshot(txid, $2::pg_snapshot) ${filter}
    ), regular AS (
      SELECT ${columns}, false AS late FROM ${opts.table} WHERE seq > $1::bigint ${filter} ORDER BY seq LIMIT $3
    )
    SELECT *, pg_current_snapshot()::text AS snapshot FROM (SELECT * FROM late UNION ALL SELECT * FROM regular) page ORDER BY seq`;
  const res = await guardPg(() => db.query<Row & { late: boolean; snapshot: string }>(sql, [after, snapshot, opts.limit + 1, ...(opts.params ?? [])]));
  const late = res.rows.filter((r) => r.late);
  const regular = res.rows.filter((r) => !r.late);
  // Late rows always go out whole (they are few), regular rows fill up to the limit.
  const room = Math.max(0, opts.limit - late.length);
  const kept = regular.slice(0, room);
  const hasMore = regular.length > room;
  const lastSeq = kept.at(-1)?.seq ?? after;
  const rows = [...late, ...kept].sort((a, b) => Number(BigInt(a.seq) - BigInt(b.seq)));
  const current = res.rows[0]?.snapshot ?? snapshot;
  return {
    data: rows.map(opts.map),
    nextCursor: hasMore || late.length > 0 ? encodeCursor({ s: String(lastSeq), x: current }) : null,
  };
}
