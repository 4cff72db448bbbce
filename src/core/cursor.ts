/** List paging conventions, shared by every list route. */
export const LIST_LIMIT_DEFAULT = 50;
export const LIST_LIMIT_MAX = 250;

/**
 * A cursor is opaque to clients: base64url of a small JSON object the store
 * adapter wrote. `decodeCursor` returns null for anything it did not write.
 */
export function encodeCursor(value: Record<string, unknown>): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

export function decodeCursor(cursor: string): Record<string, unknown> | null {
  try {
    const value: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

export interface Page<T> {
  data: T[];
  nextCursor: string | null;
}
