import { join } from 'node:path';
import type { Config } from '../config/schema.ts';
import type { Store } from './store.ts';
import { openSqliteStore } from './sqlite/store.ts';
import { openPostgresStore } from './postgres/store.ts';

/** The store the configuration names: `sqlite:<path>` (default) or `postgres://…`. */
export function openStore(config: Pick<Config, 'databaseUrl' | 'databaseSchema' | 'dataDir'> & Partial<Pick<Config, 'databaseStatementTimeoutMs'>>): Store {
  const url = config.databaseUrl ?? `sqlite:${join(config.dataDir, 'portcullis.db')}`;
  if (url.startsWith('postgres://') || url.startsWith('postgresql://')) {
    return openPostgresStore({ url, schema: config.databaseSchema, ...(config.databaseStatementTimeoutMs ? { statementTimeoutMs: config.databaseStatementTimeoutMs } : {}) });
  }
  return openSqliteStore(url.slice('sqlite:'.length));
}
