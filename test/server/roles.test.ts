import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { createWorkspace, httpRequest, sharedStoreEnv, startServe, waitFor } from '../harness/processes.ts';

const attempts = async (url: string, key: string): Promise<number> => {
  const res = await httpRequest(`${url}/metrics`, { key });
  assert.equal(res.status, 200, res.text);
  return [...res.text.matchAll(/^portcullis_delivery_attempts_total\{[^}]*outcome="succeeded"[^}]*\} (\d+)/gm)].reduce((n, m) => n + Number(m[1]), 0);
};

test('serve --role api takes the API without background work; --role worker delivers what it queued and answers only health and metrics', async (t) => {
  const received: string[] = [];
  const receiver = createServer((req, res) => {
    received.push(String(req.headers['webhook-id']));
    res.end();
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => receiver.close(() => resolve())));

  const a = await createWorkspace(t);
  const b = await createWorkspace(t);
  const shared = { ...sharedStoreEnv(a), PORTCULLIS_SSRF_ALLOW: '127.0.0.0/8' };
  const api = await startServe(t, { workspace: a, env: shared, args: ['--role', 'api'] });
  const worker = await startServe(t, { workspace: b, env: { ...shared, PORTCULLIS_DATA_DIR: b.dataDir, PORTCULLIS_ROLE: 'worker' } });
  const admin = api.adminKey!;

  const ep = await httpRequest(`${api.url}/v1/endpoints`, { method: 'POST', key: admin, body: { url: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hooks` } });
  assert.equal(ep.status, 201, ep.text);
  const published = await httpRequest(`${api.url}/v1/messages`, { method: 'POST', key: admin, body: { eventType: 'invoice.paid', payload: { n: 1 } } });
  assert.equal(published.status, 202, published.text);
  const { id } = published.json<{ id: string }>();

  await waitFor(async () => received.includes(id), 10_000, 20);
  await waitFor(async () => (await attempts(worker.url, admin)) === 1, 10_000, 20);
  assert.equal(await attempts(api.url, admin), 0, 'the api process attempted nothing');

  // The worker's port: health, readiness and metrics; no API.
  assert.equal((await httpRequest(`${worker.url}/healthz`)).status, 200);
  assert.equal((await httpRequest(`${worker.url}/readyz`)).status, 200);
  for (const path of ['/v1/messages', '/v1/endpoints', '/v1/keys']) {
    const res = await httpRequest(`${worker.url}${path}`, { key: admin });
    assert.equal(res.status, 404, `${path} on a worker: ${res.status}`);
  }
});

test('an unknown role is refused at startup, naming the setting', async (t) => {
  await assert.rejects(startServe(t, { args: ['--role', 'scheduler'] }), /role \(PORTCULLIS_ROLE\)/);
});
