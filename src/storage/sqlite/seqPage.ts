import { decodeCursor, encodeCursor } from '../../core/cursor.ts';
import type { Page } from '../../core/cursor.ts';
import { InvalidCursorError } from '../store.ts';

/**
 * Keyset paging by `seq` for SQLite, where writers are serialised and seq
 * order is commit order: the cursor is the last seq a page returned.
 */
export function afterSeq(cursor: string | null): number {
  if (cursor === null) return 0;
  const c = decodeCursor(cursor);
  if (!c || !Number.isSafeInteger(c.s)) throw new InvalidCursorError();
  return c.s as number;
}

/** A page from `limit + 1` rows read after the cursor: the extra row says whether there is more. */
export function seqPage<Row extends { seq: number }, T>(rows: Row[], limit: number, map: (row: Row) => T): Page<T> {
  const page = rows.slice(0, limit);
  return { data: page.map(map), nextCursor: rows.length > limit ? encodeCursor({ s: page.at(-1)!.seq }) : null };
}
