import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { createWorkspace, httpRequest, sharedStoreEnv, startServe, waitFor } from '../harness/processes.ts';

/** The contract: a revocation reaches every other process within 1 s. */
const REVOCATION_DEADLINE_MS = 1000;
const POLL_INTERVAL_MS = 50;
test('a key revoked through one serve process is refused by another on the same store within 1 s', async (t) => {
  // Both processes share the store and the root secret; each has its own data folder and port.
  const a = await createWorkspace(t);
  const b = await createWorkspace(t);
  const shared = sharedStoreEnv(a);
  const serverA = await startServe(t, { workspace: a, env: shared });
  const serverB = await startServe(t, { workspace: b, env: { ...shared, PORTCULLIS_DATA_DIR: b.dataDir } });
  assert.ok(serverA.adminKey, 'A initialised the store');
  assert.equal(serverB.adminKey, null, 'B found the store initialised');
  assert.ok(!existsSync(join(b.dataDir, 'admin.key')));
  const admin = serverA.adminKey;

  const createdOnB = await httpRequest(`${serverB.url}/v1/keys`, { method: 'POST', key: admin, body: { name: 'shared', scopes: ['keys:read'] } });
  assert.equal(createdOnB.status, 201, createdOnB.text);
  const key = createdOnB.json<{ id: string; secret: string }>();
  const useOnB = async (): Promise<number> => (await httpRequest(`${serverB.url}/v1/keys/${key.id}`, { key: key.secret })).status;
  // Used on B, so B holds it verified; seen on A too.
  assert.equal(await useOnB(), 200);
  assert.equal(await useOnB(), 200);
  assert.equal((await httpRequest(`${serverA.url}/v1/keys/${key.id}`, { key: key.secret })).status, 200);

  const revoked = await httpRequest(`${serverA.url}/v1/keys/${key.id}/revoke`, { method: 'POST', key: admin });
  assert.equal(revoked.status, 200, revoked.text);
  const revokedAt = performance.now();
  assert.equal((await httpRequest(`${serverA.url}/v1/keys`, { key: key.secret })).status, 401, 'refused at once by the process that revoked it');

  await waitFor(async () => (await useOnB()) === 401, 3000, POLL_INTERVAL_MS);
  const tookMs = performance.now() - revokedAt;
  assert.ok(tookMs < REVOCATION_DEADLINE_MS, `B refused the key after ${Math.round(tookMs)} ms`);
  const refused = await httpRequest(`${serverB.url}/v1/keys`, { key: key.secret });
  assert.equal(refused.status, 401);
  assert.match(String(refused.headers['www-authenticate']), /^Bearer/);
});
