import Database from 'better-sqlite3';
import pg from 'pg';
import { TEST_DATABASE_URL, TEST_ENGINE } from './engine.ts';
import type { Harness } from './startHarness.ts';

/** Rows of a read-only query run behind the API's back, on whichever engine the test uses. */
export async function queryRows<T = Record<string, unknown>>(h: Harness, sql: string): Promise<T[]> {
  if (TEST_ENGINE === 'sqlite') {
    const db = new Database(`${h.dataDir}/portcullis.db`, { readonly: true });
    try {
      return db.prepare(sql).all() as T[];
    } finally {
      db.close();
    }
  }
  const client = new pg.Client({ connectionString: TEST_DATABASE_URL, options: `-c search_path=${h.config.databaseSchema}` });
  await client.connect();
  try {
    return (await client.query(sql)).rows as T[];
  } finally {
    await client.end();
  }
}

/** Runs a statement behind the API's back: stages what an earlier version left in the store. */
export async function executeSql(h: Harness, sql: string): Promise<void> {
  if (TEST_ENGINE === 'sqlite') {
    const db = new Database(`${h.dataDir}/portcullis.db`);
    try {
      db.exec(sql);
    } finally {
      db.close();
    }
    return;
  }
  const client = new pg.Client({ connectionString: TEST_DATABASE_URL, options: `-c search_path=${h.config.databaseSchema}` });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}
