import { randomBytes } from 'node:crypto';
import pg from 'pg';

/**
 * Which store the suite runs on: PostgreSQL when PORTCULLIS_TEST_DATABASE_URL is
 * set (`npm test` sets it for its second pass), else SQLite.
 */
export const TEST_DATABASE_URL = process.env.PORTCULLIS_TEST_DATABASE_URL;
export const TEST_ENGINE: 'sqlite' | 'postgres' = TEST_DATABASE_URL ? 'postgres' : 'sqlite';

/** A fresh, empty PostgreSQL schema for one test; dropped by the returned function. */
export async function freshSchema(): Promise<{ schema: string; drop: () => Promise<void> }> {
  const schema = `t_${randomBytes(8).toString('hex')}`;
  return {
    schema,
    drop: async () => {
      const client = new pg.Client({ connectionString: TEST_DATABASE_URL });
      await client.connect();
      try {
        await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      } finally {
        await client.end();
      }
    },
  };
}

/**
 * Configuration of a test store in `dataDir`: an SQLite file there, or a fresh
 * PostgreSQL schema. `cleanup` drops the schema.
 */
export async function testStoreConfig(dataDir: string): Promise<{ databaseUrl: string; databaseSchema: string; cleanup: () => Promise<void> }> {
  if (!TEST_DATABASE_URL) return { databaseUrl: `sqlite:${dataDir}/portcullis.db`, databaseSchema: 'portcullis', cleanup: async () => undefined };
  const { schema, drop } = await freshSchema();
  return { databaseUrl: TEST_DATABASE_URL, databaseSchema: schema, cleanup: drop };
}
