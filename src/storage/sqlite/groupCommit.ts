import type { BatchOutcome } from '../groupCommit.ts';
import type { SqliteDb } from './store.ts';
import { guard } from './store.ts';

/**
 * The commit step of SQLite's group commit (see ../groupCommit.ts): the whole
 * batch in one IMMEDIATE transaction, so one fsync for all of it instead of one
 * per delivery. `write` must be a better-sqlite3 transaction function: called
 * inside the batch's transaction it runs in its own savepoint, so an item that
 * fails on its own (a constraint, say) is rolled back and reported alone. An
 * error that ends the whole transaction (I/O, busy, closed connection) or a
 * failed COMMIT throws, and every caller of the batch is rejected.
 */
export function sqliteGroupCommit<I, O>(db: SqliteDb, write: (item: I) => O): (items: I[]) => BatchOutcome<O>[] {
  const writeAll = db.transaction((items: I[]): BatchOutcome<O>[] =>
    items.map((item) => {
      try {
        return { ok: true, value: write(item) };
      } catch (error) {
        if (!db.inTransaction) throw error;
        return { ok: false, error };
      }
    }),
  );
  return (items) => {
    const outcomes = guard(() => writeAll.immediate(items));
    // The same mapping as a single write: store failures become StoreUnavailableError.
    return outcomes.map((o) => (o.ok ? o : { ok: false, error: mapped(o.error) }));
  };
}

function mapped(error: unknown): unknown {
  try {
    return guard(() => {
      throw error;
    });
  } catch (err) {
    return err;
  }
}
