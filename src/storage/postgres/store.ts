import pg from 'pg';
import { loadMigrations } from '../migrations.ts';
import type { Store } from '../store.ts';
import { StoreUnavailableError } from '../store.ts';
import { createPostgresKeyStore } from './keys.ts';
import { createPostgresIdempotencyStore } from './idempotency.ts';
import { createPostgresUsageStore } from './usage.ts';
import { createPostgresSourceStore } from './sources.ts';
import { createPostgresEventStore } from './events.ts';
import { createPostgresJobStore } from './jobs.ts';
import { createPostgresConsumerGroupStore } from './consumerGroups.ts';
import { createPostgresEndpointStore } from './endpoints.ts';
import { createPostgresMessageStore } from './messages.ts';
import { createPostgresDeliveryStore } from './deliveries.ts';
import { createPostgresSignals } from './signals.ts';

const MIGRATIONS = loadMigrations(new URL('./migrations/', import.meta.url));
/** How long to wait for a pooled connection before the store counts as down. */
export const PG_CONNECT_TIMEOUT_MS = 3000;
/** The default of `databaseStatementTimeoutMs`. */
export const PG_STATEMENT_TIMEOUT_MS = 30_000;
export const PG_POOL_MAX = 10;
/** Connections of the claim pool (see openPostgresStore): the worker's and the dispatcher's claims, two at most each at once, and delivery outcomes, two at most. */
export const PG_CLAIM_POOL_MAX = 6;

export interface PostgresOptions {
  url: string;
  /** Schema holding Portcullis's tables; created by `migrate` when missing. */
  schema: string;
  /**
   * The server cancels a statement running longer; the client gives up on a query
   * unanswered for this plus PG_CONNECT_TIMEOUT_MS (a server or network gone silent,
   * which no server-side timeout ends) and drops its connection.
   */
  statementTimeoutMs?: number;
}

/** A pool (or a client inside a transaction): the only handle queries take. */
export type Queryable = Pick<pg.Pool, 'query'>;

// Error classes and SQLSTATEs that mean the server cannot be reached or is going away.
const UNAVAILABLE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'ENOTFOUND', 'EHOSTUNREACH', 'EPIPE', '57P01', '57P02', '57P03', '53300']);

function isUnavailable(err: unknown): boolean {
  const e = err as { code?: string; message?: string };
  if (e.code && (UNAVAILABLE_CODES.has(e.code) || e.code.startsWith('08'))) return true;
  const m = e.message ?? '';
  return /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|connect ECONNREFUSED|Cannot use a pool after calling end|Query read timeout/.test(m);
}

export async function guardPg<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (isUnavailable(err)) throw new StoreUnavailableError(err);
    throw err;
  }
}

/** Runs `fn` in one transaction on one pooled client. */
export async function inTransaction<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  return guardPg(async () => {
    const client = await pool.connect();
    // A connection lost mid-transaction also surfaces as an 'error' event on the
    // checked-out client; unheard, it would crash the process. The query reports it.
    const ignore = (): void => undefined;
    client.on('error', ignore);
    let failure: unknown = null;
    try {
      await client.query('BEGIN');
      const result = await fn(client);
      await client.query('COMMIT');
      return result;
    } catch (err) {
      failure = err;
      // A connection that failed is dropped below, which ends the transaction on the server;
      // a ROLLBACK would only queue behind the query that never answered.
      if (!isUnavailable(err)) await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.off('error', ignore);
      // A client whose connection failed is discarded, not handed to the next caller.
      client.release(failure !== null && isUnavailable(failure));
    }
  });
}

export const quoteIdent = (name: string): string => `"${name.replaceAll('"', '""')}"`;

export function openPostgresStore(options: PostgresOptions): Store {
  const statementTimeoutMs = options.statementTimeoutMs ?? PG_STATEMENT_TIMEOUT_MS;
  const settings = `-c search_path=${options.schema} -c statement_timeout=${statementTimeoutMs}`;
  const connection = { connectionString: options.url, connectionTimeoutMillis: PG_CONNECT_TIMEOUT_MS, application_name: 'portcullis' };
  const queryTimeout = { query_timeout: statementTimeoutMs + PG_CONNECT_TIMEOUT_MS };
  // synchronous_commit=on: a COMMIT returns only once it is durable (principle 1).
  const pool = new pg.Pool({ ...connection, ...queryTimeout, max: PG_POOL_MAX, options: `${settings} -c synchronous_commit=on` });
  // Lease claims (jobs, deliveries) and delivery outcomes run on connections of their own, set for them.
  // synchronous_commit=off: a claim lost in a crash is harmless (its rows go back to what they
  // were and are claimed again), and so is a delivery's outcome (the delivery is sent again: at
  // least once); the next durable commit flushes the WAL past them.
  // enable_bitmapscan=off: a claim reads its index in order and stops at its limit; with the
  // statistics of a queue table that just filled (a few rows, says the planner) a bitmap scan
  // gathered every due row and sorted them, and left dead index entries unmarked.
  const claimPool = new pg.Pool({ ...connection, ...queryTimeout, max: PG_CLAIM_POOL_MAX, options: `${settings} -c synchronous_commit=off -c enable_bitmapscan=off` });
  // An idle client losing its connection must not crash the process; the next query reports it.
  pool.on('error', () => undefined);
  claimPool.on('error', () => undefined);
  const signals = createPostgresSignals(pool, connection, options.schema);

  const appliedVersion = async (): Promise<number> => {
    const res = await pool.query<{ v: number | null }>(
      "SELECT CASE WHEN to_regclass('schema_migrations') IS NULL THEN 0 ELSE (SELECT max(version) FROM schema_migrations) END AS v",
    );
    return res.rows[0]?.v ?? 0;
  };

  return {
    engine: 'postgres',
    keys: createPostgresKeyStore(pool),
    idempotency: createPostgresIdempotencyStore(pool),
    usage: createPostgresUsageStore(pool),
    sources: createPostgresSourceStore(pool),
    events: createPostgresEventStore(pool),
    jobs: createPostgresJobStore(pool, claimPool),
    consumerGroups: createPostgresConsumerGroupStore(pool),
    endpoints: createPostgresEndpointStore(pool),
    messages: createPostgresMessageStore(pool),
    deliveries: createPostgresDeliveryStore(pool, claimPool),
    signals,
    meta: {
      async get(name) {
        return guardPg(async () => (await pool.query<{ value: string }>('SELECT value FROM store_meta WHERE name = $1', [name])).rows[0]?.value ?? null);
      },
    },
    async migrate() {
      return inTransaction(pool, async (client) => {
        // One migrator per schema at a time; the others wait, then find nothing to do.
        await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`portcullis.migrate.${options.schema}`]);
        await client.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(options.schema)}`);
        await client.query('CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())');
        const res = await client.query<{ v: number | null }>('SELECT max(version) AS v FROM schema_migrations');
        const current = res.rows[0]?.v ?? 0;
        let applied = 0;
        for (const m of MIGRATIONS) {
          if (m.version <= current) continue;
          await client.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [m.version, m.name]);
          await client.query(m.sql);
          applied++;
        }
        return applied;
      });
    },
    async check() {
      try {
        const v = await appliedVersion();
        return { reachable: true, migrated: v === (MIGRATIONS.at(-1)?.version ?? 0) };
      } catch (err) {
        return { reachable: false, migrated: false, detail: isUnavailable(err) ? 'cannot connect' : (err as Error).message };
      }
    },
    async close() {
      await signals.close();
      await Promise.all([pool.end().catch(() => undefined), claimPool.end().catch(() => undefined)]);
    },
  };
}
