import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import { assertProblem, runAuthSuite } from '../harness/authSuite.ts';
import { testClock } from '../harness/clock.ts';
import { TEST_DATABASE_URL, TEST_ENGINE } from '../harness/engine.ts';
import { startHarness } from '../harness/startHarness.ts';
import type { Harness } from '../harness/startHarness.ts';
import { startTcpProxy } from '../harness/tcpProxy.ts';

interface Row {
  keyId: string;
  route: string;
  period: string;
  requests: number;
  units: number;
}

function withMetering(t: TestContext, routeCosts: Record<string, number> = {}, start?: Date): Promise<Harness> {
  return startHarness(t, { env: { PORTCULLIS_METERING: JSON.stringify({ routeCosts }) }, ...(start ? { clock: testClock(start) } : {}) });
}

async function usage(h: Harness, query: string): Promise<Row[]> {
  const res = await h.get(`/v1/usage?${query}`);
  assert.equal(res.statusCode, 200, res.body);
  return res.json<{ data: Row[] }>().data;
}

runAuthSuite({ method: 'GET', url: '/v1/usage', scope: 'usage:read' });

test('each admitted request is metered by key, route and day, with the route cost in units', async (t) => {
  const h = await withMetering(t, { 'GET /v1/keys/{id}': 5 }, new Date('2026-11-22T10:00:00Z'));
  const key = await h.createKey(['keys:read']);
  for (let i = 0; i < 3; i++) assert.equal((await h.get('/v1/keys', { key: key.secret })).statusCode, 200);
  for (let i = 0; i < 2; i++) assert.equal((await h.get(`/v1/keys/${key.id}`, { key: key.secret })).statusCode, 200);
  // Refused before the route (wrong scope) counts nothing.
  assertProblem(await h.post('/v1/keys', { key: key.secret, body: { name: 'x', scopes: ['keys:read'] } }), 403, 'scope-missing');

  assert.deepEqual(await usage(h, `keyId=${key.id}`), [
    { period: '2026-11-22', keyId: key.id, route: 'GET /v1/keys', requests: 3, units: 3 },
    { period: '2026-11-22', keyId: key.id, route: 'GET /v1/keys/{id}', requests: 2, units: 10 },
  ]);
  assert.deepEqual(
    (await usage(h, `keyId=${key.id}&route=${encodeURIComponent('GET /v1/keys/{id}')}&granularity=month`)).map((r) => [r.period, r.requests, r.units]),
    [['2026-11', 2, 10]],
  );
  h.clock.advance(86_400_000);
  assert.equal((await h.get('/v1/keys', { key: key.secret })).statusCode, 200);
  assert.deepEqual(
    (await usage(h, `keyId=${key.id}&route=${encodeURIComponent('GET /v1/keys')}`)).map((r) => [r.period, r.requests]),
    [
      ['2026-11-22', 3],
      ['2026-11-23', 1],
    ],
  );
});

test('a key past its hard quota gets 429 quota-exceeded until the month turns, and refused requests are not counted', async (t) => {
  const h = await withMetering(t, {}, new Date('2026-01-31T23:59:50Z'));
  const created = await h.post('/v1/keys', { body: { name: 'q', scopes: ['keys:read'], quota: { limit: 3 } } });
  assert.equal(created.statusCode, 201, created.body);
  assert.deepEqual(created.json().quota, { limit: 3, softLimit: null });
  const key = created.json<{ id: string; secret: string }>();

  for (const remaining of ['2', '1', '0']) {
    const res = await h.get('/v1/keys', { key: key.secret });
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['x-quota-limit'], '3');
    assert.equal(res.headers['x-quota-remaining'], remaining);
    assert.equal(res.headers['x-quota-reset'], String(Date.parse('2026-02-01T00:00:00Z') / 1000));
  }
  const refused = await h.get('/v1/keys', { key: key.secret });
  assertProblem(refused, 429, 'quota-exceeded');
  assert.equal(refused.headers['retry-after'], '10');
  assert.equal(refused.json().limit, 3);
  assert.equal(refused.json().used, 3);
  assert.equal(refused.json().resetsAt, '2026-02-01T00:00:00.000Z');
  assertProblem(await h.get('/v1/keys', { key: key.secret }), 429, 'quota-exceeded');

  h.clock.advance(10_000);
  const next = await h.get('/v1/keys', { key: key.secret });
  assert.equal(next.statusCode, 200);
  assert.equal(next.headers['x-quota-remaining'], '2');
  assert.equal(next.headers['x-quota-reset'], String(Date.parse('2026-03-01T00:00:00Z') / 1000));

  assert.deepEqual(
    (await usage(h, `keyId=${key.id}&from=2026-01-01&to=2026-02-28&granularity=month`)).map((r) => [r.period, r.requests]),
    [
      ['2026-01', 3],
      ['2026-02', 1],
    ],
  );
  assert.match((await h.get('/metrics')).body, /^portcullis_quota_exceeded_total 2$/m);
});

test('past the soft limit responses carry a warning, counted in metrics and logged once', async (t) => {
  const h = await withMetering(t, { 'GET /v1/keys': 2 });
  const key = await h.createKey(['keys:read'], { quota: { limit: 10, softLimit: 6 } });
  const warnings: (string | undefined)[] = [];
  for (let i = 0; i < 5; i++) {
    const res = await h.get('/v1/keys', { key: key.secret });
    assert.equal(res.statusCode, 200);
    warnings.push(res.headers['x-quota-warning'] as string | undefined);
  }
  assert.deepEqual(
    warnings.map((w) => w !== undefined),
    [false, false, true, true, true],
  );
  assert.match(warnings[2]!, /6 of 10 units/);
  assertProblem(await h.get('/v1/keys', { key: key.secret }), 429, 'quota-exceeded');
  assert.match((await h.get('/metrics')).body, /^portcullis_quota_warnings_total 3$/m);
  assert.equal(h.logText().split('\n').filter((l) => l.includes('key passed its soft quota')).length, 1);
});

test('concurrent requests against a quota let exactly the quota through, and the ledger agrees', async (t) => {
  const h = await withMetering(t);
  const key = await h.createKey(['keys:read'], { quota: { limit: 10 } });
  const results = await Promise.all(Array.from({ length: 40 }, () => h.get('/v1/keys', { key: key.secret })));
  assert.equal(results.filter((r) => r.statusCode === 200).length, 10);
  assert.equal(results.filter((r) => r.statusCode === 429).length, 30);
  const rows = await usage(h, `keyId=${key.id}`);
  assert.equal(rows.reduce((n, r) => n + r.requests, 0), 10);
});

test('a quota can be raised, lowered and removed; a changed quota applies within a second', async (t) => {
  const h = await withMetering(t);
  const key = await h.createKey(['keys:read'], { quota: { limit: 1 } });
  assert.equal((await h.get('/v1/keys', { key: key.secret })).statusCode, 200);
  assertProblem(await h.get('/v1/keys', { key: key.secret }), 429, 'quota-exceeded');
  const raised = await h.patch(`/v1/keys/${key.id}`, { body: { quota: { limit: 3, softLimit: 2 } } });
  assert.deepEqual(raised.json().quota, { limit: 3, softLimit: 2 });
  assert.equal((await h.get('/v1/keys', { key: key.secret })).statusCode, 200);
  const removed = await h.patch(`/v1/keys/${key.id}`, { body: { quota: null } });
  assert.equal(removed.json().quota, null);
  for (let i = 0; i < 5; i++) {
    const res = await h.get('/v1/keys', { key: key.secret });
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['x-quota-limit'], undefined);
  }
});

test('quota and usage inputs are validated, and nothing is written on a refusal', async (t) => {
  const h = await withMetering(t);
  for (const quota of [{ limit: 0 }, { limit: '5' }, { limit: 5, softLimit: 5 }, { limit: 5, softLimit: 9 }, { limit: 5, extra: 1 }, { limit: 1.5 }, 5]) {
    assertProblem(await h.post('/v1/keys', { body: { name: 'x', scopes: ['keys:read'], quota } }), 400, 'validation-failed');
  }
  assert.equal((await h.get('/v1/keys')).json().data.length, 1);

  for (const query of ['from=2026-02-30', 'from=2026-11-02&to=2026-11-01', 'granularity=week', 'limit=0', 'limit=251', 'colour=red', 'from=2025-01-01&to=2026-06-01', 'cursor=bm9wZQ']) {
    const res = await h.get(`/v1/usage?${query}`);
    assert.equal(res.statusCode, 400, `${query}: ${res.body}`);
    assert.match(String(res.headers['content-type']), /^application\/problem\+json/);
  }
});

test('a route cost naming a route that does not exist stops startup', async (t) => {
  await assert.rejects(withMetering(t, { 'GET /v1/nothing': 3 }), /metering\.routeCosts names routes that do not exist: GET \/v1\/nothing/);
});

test('counts gathered while the store is down are written once it is back, once', async (t) => {
  if (TEST_ENGINE !== 'postgres') {
    t.skip('the embedded SQLite store has no connection to cut');
    return;
  }
  const direct = new URL(TEST_DATABASE_URL!);
  const proxy = await startTcpProxy({ host: direct.hostname, port: Number(direct.port || 5432) });
  t.after(() => proxy.close());
  const h = await startHarness(t, { env: { PORTCULLIS_DATABASE_URL: proxy.via(TEST_DATABASE_URL!), PORTCULLIS_METERING: JSON.stringify({ flushIntervalMs: 100 }) } });
  const key = await h.createKey(['keys:read']);
  assert.equal((await h.get('/v1/keys', { key: key.secret })).statusCode, 200);
  // The verifier trusts a key it checked recently without the store, so these are admitted (and
  // metered: admitted requests count, whatever their outcome) though the handler then answers 503.
  proxy.cut();
  const during = await Promise.all(Array.from({ length: 3 }, () => h.get('/v1/keys', { key: key.secret })));
  assert.deepEqual(
    during.map((r) => r.statusCode),
    [503, 503, 503],
  );
  await new Promise((r) => setTimeout(r, 400));
  proxy.restore();
  let rows: Row[] = [];
  for (let i = 0; i < 50; i++) {
    await new Promise((r) => setTimeout(r, 100));
    const res = await h.get(`/v1/usage?keyId=${key.id}`);
    if (res.statusCode !== 200) continue;
    rows = res.json<{ data: Row[] }>().data;
    if (rows.length > 0) break;
  }
  assert.deepEqual(
    rows.map((r) => [r.route, r.requests]),
    [['GET /v1/keys', 4]],
  );
  assert.match(h.logText(), /usage flush failed; kept for the next one/);
});

test('a key cannot lift its own quota or rate-limit policy without admin', async (t) => {
  const h = await startHarness(t, { env: { PORTCULLIS_RATE_LIMITS: JSON.stringify({ policies: { small: { limit: 50, window: 60 }, big: { limit: 5000, window: 60 } } }) } });
  const self = await h.createKey(['keys:read', 'keys:write'], { quota: { limit: 10 }, rateLimitPolicy: 'small' });
  for (const body of [{ quota: { limit: 1_000_000 } }, { quota: null }, { rateLimitPolicy: 'big' }, { rateLimitPolicy: null }]) {
    assertProblem(await h.patch(`/v1/keys/${self.id}`, { key: self.secret, body }), 403, 'scope-missing');
  }
  const unchanged = (await h.get(`/v1/keys/${self.id}`)).json();
  assert.deepEqual([unchanged.quota, unchanged.rateLimitPolicy], [{ limit: 10, softLimit: null }, 'small']);
  // It may still rename itself, and change the limits of keys it manages.
  assert.equal((await h.patch(`/v1/keys/${self.id}`, { key: self.secret, body: { name: 'renamed' } })).statusCode, 200);
  const managed = await h.createKey(['keys:read']);
  assert.equal((await h.patch(`/v1/keys/${managed.id}`, { key: self.secret, body: { quota: { limit: 3 } } })).statusCode, 200);
  // An admin key may change its own.
  const admin = await h.createKey(['admin'], { quota: { limit: 10 } });
  assert.equal((await h.patch(`/v1/keys/${admin.id}`, { key: admin.secret, body: { quota: { limit: 20 } } })).statusCode, 200);
});
