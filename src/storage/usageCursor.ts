import { decodeCursor, encodeCursor } from '../core/cursor.ts';
import type { UsageRow } from './store.ts';
import { InvalidCursorError } from './store.ts';

/** Usage pages go by (period, key id, route): the last row of a page is the cursor. */
export type UsagePosition = [period: string, keyId: string, route: string];

export function encodeUsageCursor(row: UsageRow): string {
  return encodeCursor({ u: [row.period, row.keyId, row.route] });
}

export function decodeUsageCursor(cursor: string | null): UsagePosition | null {
  if (cursor === null) return null;
  const u = decodeCursor(cursor)?.u;
  if (!Array.isArray(u) || u.length !== 3 || !u.every((v) => typeof v === 'string')) throw new InvalidCursorError();
  return u as UsagePosition;
}

export function usagePage(rows: UsageRow[], limit: number): { data: UsageRow[]; nextCursor: string | null } {
  const data = rows.slice(0, limit);
  return { data, nextCursor: rows.length > limit ? encodeUsageCursor(data.at(-1)!) : null };
}
