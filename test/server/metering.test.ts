import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createWorkspace, httpRequest, runCliJson, sharedStoreEnv, startServe } from '../harness/processes.ts';

interface Row {
  keyId: string;
  route: string;
  requests: number;
}

test('usage and quotas survive a restart: counts gathered in memory are written at shutdown', async (t) => {
  const ws = await createWorkspace(t);
  // A long flush interval: only the shutdown flush can have written these counts.
  const env = { PORTCULLIS_METERING: JSON.stringify({ flushIntervalMs: 60_000 }) };
  const first = await startServe(t, { workspace: ws, env });
  const admin = first.adminKey!;
  const created = await httpRequest(`${first.url}/v1/keys`, { method: 'POST', key: admin, body: { name: 'q', scopes: ['keys:read'], quota: { limit: 5 } } });
  assert.equal(created.status, 201, created.text);
  const key = created.json<{ id: string; secret: string }>();
  for (let i = 0; i < 3; i++) assert.equal((await httpRequest(`${first.url}/v1/keys`, { key: key.secret })).status, 200);
  const stopped = await first.stop('SIGTERM');
  assert.equal(stopped.code, 0);

  const second = await startServe(t, { workspace: ws, env });
  assert.equal((await httpRequest(`${second.url}/v1/keys`, { key: key.secret })).status, 200);
  assert.equal((await httpRequest(`${second.url}/v1/keys`, { key: key.secret })).status, 200);
  assert.equal((await httpRequest(`${second.url}/v1/keys`, { key: key.secret })).status, 429, 'the quota remembers the 3 requests before the restart');

  const usage = await runCliJson<{ data: Row[] }>(['usage', '--key', key.id, '--month'], { PORTCULLIS_URL: second.url, PORTCULLIS_API_KEY: admin });
  assert.deepEqual(
    usage.data.map((r) => [r.route, r.requests]),
    [['GET /v1/keys', 5]],
  );
});

test('two processes on one store meter into one ledger, each request once', async (t) => {
  const a = await createWorkspace(t);
  const b = await createWorkspace(t);
  const shared = sharedStoreEnv(a);
  const serverA = await startServe(t, { workspace: a, env: shared });
  const serverB = await startServe(t, { workspace: b, env: { ...shared, PORTCULLIS_DATA_DIR: b.dataDir } });
  const admin = serverA.adminKey!;
  const key = (await httpRequest(`${serverA.url}/v1/keys`, { method: 'POST', key: admin, body: { name: 'k', scopes: ['keys:read'] } })).json<{ id: string; secret: string }>();
  await Promise.all(Array.from({ length: 20 }, (_, i) => httpRequest(`${(i % 2 ? serverA : serverB).url}/v1/keys/${key.id}`, { key: key.secret })));
  // B writes its counts within its flush interval (1 s by default).
  const deadline = Date.now() + 5000;
  let total = 0;
  while (Date.now() < deadline) {
    const rows = (await httpRequest(`${serverA.url}/v1/usage?keyId=${key.id}`, { key: admin })).json<{ data: Row[] }>().data;
    total = rows.reduce((n, r) => n + r.requests, 0);
    if (total >= 20) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(total, 20);
  await new Promise((r) => setTimeout(r, 1500));
  const rows = (await httpRequest(`${serverB.url}/v1/usage?keyId=${key.id}`, { key: admin })).json<{ data: Row[] }>().data;
  assert.deepEqual(
    rows.map((r) => [r.route, r.requests]),
    [['GET /v1/keys/{id}', 20]],
  );
});
