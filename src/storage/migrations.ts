import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

/**
 * Reads `NNNN_name.sql` files from an engine's migrations folder, in order.
 * Migrations are append-only: never edit one that has shipped.
 */
export function loadMigrations(dir: URL): Migration[] {
  const path = fileURLToPath(dir);
  return readdirSync(path)
    .filter((f) => /^\d{4}_[a-z0-9_]+\.sql$/.test(f))
    .sort()
    .map((file) => ({
      version: Number(file.slice(0, 4)),
      name: file.slice(5, -4),
      sql: readFileSync(`${path}/${file}`, 'utf8'),
    }));
}
