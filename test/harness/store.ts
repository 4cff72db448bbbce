import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { openStore } from '../../src/storage/open.ts';
import type { Store } from '../../src/storage/store.ts';
import { onCleanup } from './cleanup.ts';
import { testStoreConfig } from './engine.ts';

/** A migrated store of the engine under test (temp SQLite file or fresh PostgreSQL schema), closed and removed after the test. */
export async function openTestStore(t: TestContext): Promise<{ store: Store; config: { databaseUrl: string; databaseSchema: string; dataDir: string } }> {
  const dataDir = mkdtempSync(join(tmpdir(), 'portcullis-store-'));
  const sc = await testStoreConfig(dataDir);
  const config = { databaseUrl: sc.databaseUrl, databaseSchema: sc.databaseSchema, dataDir };
  const store = openStore(config);
  await store.migrate();
  onCleanup(t, async () => {
    await store.close();
    await sc.cleanup();
    rmSync(dataDir, { recursive: true, force: true });
  });
  return { store, config };
}
