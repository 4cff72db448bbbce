import { join } from 'node:path';
import { generateRootSecret, ROOT_SECRET_MIN_LENGTH } from '../core/rootSecret.ts';
import type { Config } from '../config/schema.ts';
import { SECRET_KEY_FILE, readIfExists, writePrivateFile } from './files.ts';

/**
 * The root secret: `secretKey` from configuration, else `<dataDir>/secret.key`,
 * generated (0600) on first start. Processes sharing a PostgreSQL store must
 * share the secret too: set PORTCULLIS_SECRET_KEY (or _FILE) on all of them.
 */
export function resolveRootSecret(config: Pick<Config, 'secretKey' | 'dataDir'>): string {
  if (config.secretKey) return config.secretKey;
  const path = join(config.dataDir, SECRET_KEY_FILE);
  const existing = readIfExists(path)?.trim();
  if (existing) {
    if (existing.length < ROOT_SECRET_MIN_LENGTH) throw new Error(`${path} holds a secret shorter than ${ROOT_SECRET_MIN_LENGTH} characters`);
    return existing;
  }
  const secret = generateRootSecret();
  writePrivateFile(path, `${secret}\n`);
  return secret;
}
