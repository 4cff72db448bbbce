import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { sign } from '@octokit/webhooks-methods';
import { TEST_ENGINE } from '../harness/engine.ts';
import { createWorkspace, httpRequest, sharedStoreEnv, startServe, waitFor } from '../harness/processes.ts';
import { startHarness } from '../harness/startHarness.ts';

const signals = async (url: string, key: string, topic: string): Promise<number> => {
  const res = await httpRequest(`${url}/metrics`, { key });
  assert.equal(res.status, 200, res.text);
  const metrics = res.text;
  return Number(new RegExp(`portcullis_store_signals_received_total\\{topic="${topic}"\\} (\\d+)`).exec(metrics)?.[1] ?? 0);
};

test(
  'a process sharing the PostgreSQL store hears of new deliveries and events written by another at once (LISTEN/NOTIFY), not its own',
  { skip: TEST_ENGINE !== 'postgres' && 'SQLite has no channel between processes: each polls' },
  async (t) => {
    const a = await createWorkspace(t);
    const b = await createWorkspace(t);
    const shared = { ...sharedStoreEnv(a), PORTCULLIS_SSRF_ALLOW: '127.0.0.0/8' };
    const receiver = createServer((_req, res) => res.end('ok'));
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    t.after(() => new Promise<void>((resolve) => receiver.close(() => resolve())));
    const serverA = await startServe(t, { workspace: a, env: shared });
    const serverB = await startServe(t, { workspace: b, env: { ...shared, PORTCULLIS_DATA_DIR: b.dataDir } });
    const admin = serverA.adminKey!;
    assert.deepEqual([await signals(serverB.url, admin, 'deliveries'), await signals(serverB.url, admin, 'events')], [0, 0]);

    const ep = await httpRequest(`${serverA.url}/v1/endpoints`, { method: 'POST', key: admin, body: { url: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hooks`, eventTypes: ['invoice.*'] } });
    assert.equal(ep.status, 201, ep.text);
    const published = await httpRequest(`${serverA.url}/v1/messages`, { method: 'POST', key: admin, body: { eventType: 'invoice.paid', payload: { n: 1 } } });
    assert.equal(published.status, 202, published.text);
    await waitFor(async () => (await signals(serverB.url, admin, 'deliveries')) >= 1, 10_000, 20);

    const secret = randomBytes(16).toString('hex');
    const source = await httpRequest(`${serverA.url}/v1/sources`, { method: 'POST', key: admin, body: { name: 'GitHub', slug: 'gh', type: 'github', secret } });
    assert.equal(source.status, 201, source.text);
    const payload = { action: 'opened' };
    const ingested = await httpRequest(`${serverA.url}/in/gh`, {
      method: 'POST',
      body: payload,
      headers: { 'x-github-event': 'issues', 'x-github-delivery': randomBytes(8).toString('hex'), 'x-hub-signature-256': await sign(secret, JSON.stringify(payload)) },
    });
    assert.equal(ingested.status, 200, ingested.text);
    await waitFor(async () => (await signals(serverB.url, admin, 'events')) >= 1, 10_000, 20);

    // A process ignores its own signals.
    assert.deepEqual([await signals(serverA.url, admin, 'deliveries'), await signals(serverA.url, admin, 'events')], [0, 0]);
  },
);

test(
  'an endpoint, source or key changed through one instance is seen by another sharing the PostgreSQL store at once, not when its caches expire',
  { skip: TEST_ENGINE !== 'postgres' && 'SQLite has no channel between processes: caches expire within a second' },
  async (t) => {
    const one = await startHarness(t);
    const two = await startHarness(t, { sharing: one, clock: one.clock });
    const key = await one.createKey(['keys:read']);
    const source = (await one.post('/v1/sources', { body: { name: 'GitHub', slug: 'gh', type: 'github', secret: 'gh-secret' } })).json<{ id: string }>();
    const deliver = async (): Promise<number> => {
      const body = JSON.stringify({ action: 'opened' });
      const headers = { 'content-type': 'application/json', 'x-github-event': 'issues', 'x-github-delivery': randomBytes(8).toString('hex'), 'x-hub-signature-256': await sign('gh-secret', body) };
      return (await two.post('/in/gh', { key: null, payload: body, headers })).statusCode;
    };
    const published = async (): Promise<number> => (await two.post('/v1/messages', { body: { eventType: 'a.b', payload: {} } })).json<{ deliveries: number }>().deliveries;
    // Two's caches hold the key (its clock stands still: it never expires on its own), the source and the endpoint list (a second each).
    assert.equal((await two.get('/v1/keys', { key: key.secret })).statusCode, 200);
    assert.equal(await deliver(), 200);
    const warmed = Date.now();
    assert.equal(await published(), 0);

    assert.equal((await one.post('/v1/endpoints', { body: { url: 'https://hooks.example.com/' } })).statusCode, 201);
    await one.revokeKey(key.id);
    assert.equal((await one.request('DELETE', `/v1/sources/${source.id}`)).statusCode, 204);

    await waitFor(async () => (await published()) === 1 && (await deliver()) === 404 && (await two.get('/v1/keys', { key: key.secret })).statusCode === 401, 5000, 10);
    assert.ok(Date.now() - warmed < 1000, `seen ${Date.now() - warmed} ms after the caches were filled, before they expire`);
    const metrics = (await two.get('/metrics')).body;
    for (const topic of ['endpoints', 'sources', 'keys']) assert.match(metrics, new RegExp(`portcullis_store_signals_received_total\\{topic="${topic}"\\} [1-9]`));
  },
);
