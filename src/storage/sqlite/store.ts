import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { loadMigrations } from '../migrations.ts';
import type { Store } from '../store.ts';
import { StoreUnavailableError } from '../store.ts';
import { createSqliteKeyStore } from './keys.ts';
import { createSqliteIdempotencyStore } from './idempotency.ts';
import { createSqliteUsageStore } from './usage.ts';
import { createSqliteSourceStore } from './sources.ts';
import { createSqliteEventStore } from './events.ts';
import { createSqliteJobStore } from './jobs.ts';
import { createSqliteConsumerGroupStore } from './consumerGroups.ts';
import { createSqliteEndpointStore } from './endpoints.ts';
import { createSqliteMessageStore } from './messages.ts';
import { createSqliteDeliveryStore } from './deliveries.ts';

const MIGRATIONS = loadMigrations(new URL('./migrations/', import.meta.url));
/** How long a writer waits for another process's lock before SQLITE_BUSY. */
export const SQLITE_BUSY_TIMEOUT_MS = 5000;

export type SqliteDb = Database.Database;

/**
 * The embedded store: one SQLite file in WAL mode with synchronous=FULL, so a
 * committed transaction survives power loss. better-sqlite3 is synchronous; the
 * async Store methods wrap it so both engines share one interface.
 */
export function openSqliteStore(path: string): Store {
  let db: SqliteDb;
  try {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    db = new Database(path);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.pragma('foreign_keys = ON');
    db.pragma(`busy_timeout = ${SQLITE_BUSY_TIMEOUT_MS}`);
  } catch (err) {
    throw new StoreUnavailableError(err);
  }
  return {
    engine: 'sqlite',
    keys: createSqliteKeyStore(db),
    idempotency: createSqliteIdempotencyStore(db),
    usage: createSqliteUsageStore(db),
    sources: createSqliteSourceStore(db),
    events: createSqliteEventStore(db),
    jobs: createSqliteJobStore(db),
    consumerGroups: createSqliteConsumerGroupStore(db),
    endpoints: createSqliteEndpointStore(db),
    messages: createSqliteMessageStore(db),
    deliveries: createSqliteDeliveryStore(db),
    // Processes sharing the file have no channel between them: each polls.
    signals: { send: () => undefined, listen: () => undefined, close: async () => undefined },
    meta: {
      async get(name) {
        return guard(() => (db.prepare('SELECT value FROM store_meta WHERE name = ?').get(name) as { value: string } | undefined)?.value ?? null);
      },
    },
    async migrate() {
      return guard(() => migrate(db));
    },
    async check() {
      try {
        const applied = appliedVersion(db);
        return { reachable: true, migrated: applied === latestVersion() };
      } catch (err) {
        return { reachable: false, migrated: false, detail: (err as Error).message };
      }
    },
    async close() {
      if (db.open) db.close();
    },
  };
}

function latestVersion(): number {
  return MIGRATIONS.at(-1)?.version ?? 0;
}

function appliedVersion(db: SqliteDb): number {
  const table = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'").get();
  if (!table) return 0;
  const row = db.prepare('SELECT max(version) AS v FROM schema_migrations').get() as { v: number | null };
  return row.v ?? 0;
}

function migrate(db: SqliteDb): number {
  db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL) STRICT');
  // IMMEDIATE takes the write lock up front, so two processes migrating at once take turns.
  const run = db.transaction(() => {
    const current = appliedVersion(db);
    let applied = 0;
    for (const m of MIGRATIONS) {
      if (m.version <= current) continue;
      db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(m.version, m.name, Date.now());
      db.exec(m.sql);
      applied++;
    }
    return applied;
  });
  return run.immediate();
}

/** Maps engine failures that mean "cannot reach the store" to StoreUnavailableError. */
export function guard<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    const code = (err as { code?: string }).code ?? '';
    if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_IOERR') || code === 'SQLITE_CANTOPEN' || code === 'SQLITE_FULL' || (err as Error).message === 'The database connection is not open') {
      throw new StoreUnavailableError(err);
    }
    throw err;
  }
}

/**
 * Runs a write transaction whose loss in a crash is harmless without an fsync of
 * its own: its commit runs with synchronous=NORMAL. A lease claim lost goes back
 * to the state before it and is claimed again; a delivery's outcome lost leaves
 * the delivery to be sent again (at least once). In WAL mode such a commit
 * survives the process dying (kill -9); only an OS crash or power loss before
 * the next synchronous=FULL commit, which syncs the WAL up to its own frames and
 * so this one's too, can undo it.
 */
export function unsyncedWriter(db: SqliteDb): <T>(tx: () => T) => T {
  // Only in WAL mode does a later commit's sync cover this one (':memory:' has no WAL, nor a need).
  if (db.pragma('journal_mode', { simple: true }) !== 'wal') return (tx) => tx();
  const relaxed = db.prepare('PRAGMA synchronous = NORMAL');
  const full = db.prepare('PRAGMA synchronous = FULL');
  return (tx) => {
    relaxed.run();
    try {
      return tx();
    } finally {
      // Inside a transaction (a rollback that failed) the setting cannot change; the error that got here goes on.
      if (!db.inTransaction) full.run();
    }
  };
}

/** Prepares each distinct SQL text once per connection. */
export function statementCache(db: SqliteDb): (sql: string) => Database.Statement {
  const cache = new Map<string, Database.Statement>();
  return (sql) => {
    let stmt = cache.get(sql);
    if (!stmt) {
      stmt = db.prepare(sql);
      cache.set(sql, stmt);
    }
    return stmt;
  };
}
