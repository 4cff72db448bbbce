import { join } from 'node:path';
import { ID_PREFIX, newId } from '../core/ids.ts';
import { ADMIN_SCOPE } from '../core/scopes.ts';
import { issueSecret } from '../keys/issue.ts';
import type { Services } from '../http/services.ts';
import { ADMIN_KEY_FILE, writePrivateFile } from './files.ts';
import { secretCheck } from './services.ts';

export type BootstrapResult = { created: true; adminKey: string; keyId: string; path: string } | { created: false; path: string };

/**
 * On an empty store, creates the first admin key and writes it to
 * `<dataDir>/admin.key` (0600). Once per store, even with several processes
 * starting at once: the store decides.
 */
export async function bootstrap(services: Services): Promise<BootstrapResult> {
  const path = join(services.config.dataDir, ADMIN_KEY_FILE);
  const issued = issueSecret(services.apiKeyPepper);
  const key = await services.store.keys.bootstrap(
    {
      id: newId(ID_PREFIX.key),
      name: 'admin',
      customer: null,
      metadata: { createdBy: 'init' },
      scopes: [ADMIN_SCOPE],
      prefix: issued.prefix,
      secretHash: issued.hash,
      createdBy: null,
      expiresAt: null,
      rateLimitPolicy: null,
      quota: null,
      now: services.clock(),
    },
    { secret_check: secretCheck(services.apiKeyPepper) },
  );
  if (!key) return { created: false, path };
  writePrivateFile(path, `${issued.secret}\n`);
  return { created: true, adminKey: issued.secret, keyId: key.id, path };
}
