import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import type { LightMyRequestResponse } from 'fastify';
import { assertProblem } from '../harness/authSuite.ts';
import { startHarness } from '../harness/startHarness.ts';
import type { Harness } from '../harness/startHarness.ts';

interface Limits {
  policies: Record<string, { limit: number; window: number; burst?: number; onStoreError?: 'open' | 'closed' }>;
  perKey?: string;
  perIp?: string;
  routes?: Record<string, string>;
}

function withLimits(t: TestContext, limits: Limits, env: Record<string, string> = {}): Promise<Harness> {
  return startHarness(t, { env: { PORTCULLIS_RATE_LIMITS: JSON.stringify(limits), ...env } });
}

function assertAllowed(res: LightMyRequestResponse, policy: string, limit: number, window: number, remaining: number): void {
  assert.equal(res.statusCode, 200, res.body);
  assert.equal(res.headers['ratelimit-policy'], `"${policy}";q=${limit};w=${window}`);
  assert.match(String(res.headers.ratelimit), new RegExp(`^"${policy}";r=${remaining};t=\\d+$`));
  assert.equal(res.headers['x-ratelimit-limit'], String(limit));
  assert.equal(res.headers['x-ratelimit-remaining'], String(remaining));
  assert.match(String(res.headers['x-ratelimit-reset']), /^\d{10}$/);
}

test('a key over its policy gets 429 with Retry-After, RateLimit headers and a problem naming the policy; the window resets', async (t) => {
  const h = await withLimits(t, { policies: { 'per-key': { limit: 3, window: 60 } }, perKey: 'per-key' });
  const key = await h.createKey(['keys:read']);
  for (const remaining of [2, 1, 0]) assertAllowed(await h.get('/v1/keys', { key: key.secret }), 'per-key', 3, 60, remaining);

  const refused = await h.get('/v1/keys', { key: key.secret });
  assertProblem(refused, 429, 'rate-limited');
  assert.equal(refused.json().policy, 'per-key');
  // One request is earned back every 20 s.
  assert.equal(refused.headers['retry-after'], '20');
  assert.equal(refused.headers['ratelimit-policy'], '"per-key";q=3;w=60');
  assert.equal(refused.headers.ratelimit, '"per-key";r=0;t=60');
  assert.equal(refused.headers['x-ratelimit-remaining'], '0');
  assert.equal(refused.headers['x-ratelimit-reset'], String(Math.ceil(h.clock().getTime() / 1000) + 60));

  h.clock.advance(19_000);
  assertProblem(await h.get('/v1/keys', { key: key.secret }), 429, 'rate-limited');
  h.clock.advance(1_000);
  assertAllowed(await h.get('/v1/keys', { key: key.secret }), 'per-key', 3, 60, 0);

  // A full window after the last request, the whole burst is back.
  h.clock.advance(60_000);
  assertAllowed(await h.get('/v1/keys', { key: key.secret }), 'per-key', 3, 60, 2);

  const metrics = (await h.get('/metrics')).body;
  assert.match(metrics, /portcullis_rate_limited_total\{policy="per-key"\} 2/);
});

test('keys are limited separately, and a key can name its own policy', async (t) => {
  // No default per-key policy: the admin key is unlimited, the test keys name theirs.
  const h = await withLimits(t, { policies: { basic: { limit: 1, window: 60 }, gold: { limit: 4, window: 60 } } });
  const a = await h.createKey(['keys:read'], { rateLimitPolicy: 'basic' });
  const b = await h.createKey(['keys:read'], { rateLimitPolicy: 'basic' });
  assert.equal((await h.get('/v1/keys', { key: a.secret })).statusCode, 200);
  assertProblem(await h.get('/v1/keys', { key: a.secret }), 429, 'rate-limited');
  assert.equal((await h.get('/v1/keys', { key: b.secret })).statusCode, 200);

  h.clock.advance(60_000);
  const patched = await h.patch(`/v1/keys/${a.id}`, { body: { rateLimitPolicy: 'gold' } });
  assert.equal(patched.statusCode, 200, patched.body);
  assert.equal(patched.json().rateLimitPolicy, 'gold');
  for (const remaining of [3, 2, 1, 0]) assertAllowed(await h.get('/v1/keys', { key: a.secret }), 'gold', 4, 60, remaining);
  assertProblem(await h.get('/v1/keys', { key: a.secret }), 429, 'rate-limited');

  const created = await h.post('/v1/keys', { body: { name: 'gold', scopes: ['keys:read'], rateLimitPolicy: 'gold' } });
  assert.equal(created.statusCode, 201, created.body);
  assert.equal(created.json().rateLimitPolicy, 'gold');
  assert.equal((await h.get(`/v1/keys/${a.id}`)).json().rateLimitPolicy, 'gold');
});

test('a key cannot name a policy that is not configured, and nothing is written', async (t) => {
  const h = await withLimits(t, { policies: { basic: { limit: 10, window: 60 } } });
  const before = (await h.get('/v1/keys')).json().data.length;
  const res = await h.post('/v1/keys', { body: { name: 'x', scopes: ['keys:read'], rateLimitPolicy: 'platinum' } });
  assertProblem(res, 400, 'validation-failed');
  assert.match(res.json().detail, /platinum/);
  assert.equal((await h.get('/v1/keys')).json().data.length, before);

  const key = await h.createKey(['keys:read']);
  assertProblem(await h.patch(`/v1/keys/${key.id}`, { body: { rateLimitPolicy: 'platinum' } }), 400, 'validation-failed');
  assertProblem(await h.patch(`/v1/keys/${key.id}`, { body: { rateLimitPolicy: 5 } }), 400, 'validation-failed');
  assert.equal((await h.get(`/v1/keys/${key.id}`)).json().rateLimitPolicy, null);
});

test('concurrent requests against a limit let exactly that many through', async (t) => {
  const h = await withLimits(t, { policies: { tight: { limit: 10, window: 3600 } }, perKey: 'tight' });
  const key = await h.createKey(['keys:read']);
  const results = await Promise.all(Array.from({ length: 60 }, () => h.get('/v1/keys', { key: key.secret })));
  const codes = results.map((r) => r.statusCode);
  assert.equal(codes.filter((c) => c === 200).length, 10);
  assert.equal(codes.filter((c) => c === 429).length, 50);
});

test('the address policy applies before authentication, so unauthenticated floods are limited too', async (t) => {
  const h = await withLimits(t, { policies: { ip: { limit: 2, window: 60 } }, perIp: 'ip' });
  assertProblem(await h.get('/v1/keys', { key: null }), 401, 'unauthorized');
  assertProblem(await h.get('/v1/keys', { key: null }), 401, 'unauthorized');
  const third = await h.get('/v1/keys', { key: null });
  assertProblem(third, 429, 'rate-limited');
  assert.equal(third.headers['www-authenticate'], undefined);
  // System routes are not limited.
  assert.equal((await h.get('/healthz', { key: null })).statusCode, 200);
});

test('X-Forwarded-For is ignored unless the peer is a trusted proxy', async (t) => {
  const h = await withLimits(t, { policies: { ip: { limit: 1, window: 60 } }, perIp: 'ip' });
  assert.equal((await h.get('/v1/keys', { headers: { 'x-forwarded-for': '198.51.100.1' } })).statusCode, 200);
  // A client cannot buy a fresh budget by claiming another address.
  assertProblem(await h.get('/v1/keys', { headers: { 'x-forwarded-for': '198.51.100.2' } }), 429, 'rate-limited');
});

test('behind a trusted proxy, clients are told apart by X-Forwarded-For; IPv6 clients per /64, IPv4-mapped as IPv4', async (t) => {
  const h = await withLimits(t, { policies: { ip: { limit: 1, window: 60 } }, perIp: 'ip' }, { PORTCULLIS_TRUST_PROXY: '127.0.0.1' });
  const from = (address: string): Promise<LightMyRequestResponse> => h.get('/v1/keys', { headers: { 'x-forwarded-for': address } });
  assert.equal((await from('198.51.100.1')).statusCode, 200);
  assert.equal((await from('198.51.100.2')).statusCode, 200);
  assertProblem(await from('::ffff:198.51.100.1'), 429, 'rate-limited');
  // The client is the last address the trusted proxy saw, not what the client itself claimed.
  assertProblem(await from('203.0.113.9, 198.51.100.2'), 429, 'rate-limited');

  assert.equal((await from('2001:db8:0:1::1')).statusCode, 200);
  assertProblem(await from('2001:db8:0:1:ffff::2'), 429, 'rate-limited');
  assert.equal((await from('2001:db8:0:2::1')).statusCode, 200);
});

test('the IPv6 prefix is configurable', async (t) => {
  const h = await withLimits(t, { policies: { ip: { limit: 1, window: 60 } }, perIp: 'ip' }, { PORTCULLIS_TRUST_PROXY: '127.0.0.1', PORTCULLIS_IPV6_PREFIX: '128' });
  assert.equal((await h.get('/v1/keys', { headers: { 'x-forwarded-for': '2001:db8::1' } })).statusCode, 200);
  assert.equal((await h.get('/v1/keys', { headers: { 'x-forwarded-for': '2001:db8::2' } })).statusCode, 200);
});

test('a route policy limits that route only, per key; several policies show in the headers', async (t) => {
  const h = await withLimits(t, {
    policies: { create: { limit: 1, window: 60 }, keys: { limit: 100, window: 60 } },
    perKey: 'keys',
    routes: { 'POST /v1/keys': 'create' },
  });
  const first = await h.post('/v1/keys', { body: { name: 'a', scopes: ['keys:read'] } });
  assert.equal(first.statusCode, 201, first.body);
  assert.equal(first.headers['ratelimit-policy'], '"keys";q=100;w=60, "create";q=1;w=60');
  assert.match(String(first.headers.ratelimit), /^"keys";r=99;t=\d+, "create";r=0;t=60$/);
  assert.equal(first.headers['x-ratelimit-limit'], '1');

  const second = await h.post('/v1/keys', { body: { name: 'b', scopes: ['keys:read'] } });
  assertProblem(second, 429, 'rate-limited');
  assert.equal(second.json().policy, 'create');
  assert.equal(second.headers['retry-after'], '60');
  assert.equal((await h.get('/v1/keys')).json().data.length, 2, 'the refused create wrote nothing');

  // Another key has its own budget on the route.
  const other = await h.createKey(['keys:read', 'keys:write']).catch((err: Error) => err);
  assert.ok(other instanceof Error, 'the admin key is still limited on POST /v1/keys');
  h.clock.advance(60_000);
  const writer = await h.createKey(['keys:read', 'keys:write']);
  assert.equal((await h.post('/v1/keys', { key: writer.secret, body: { name: 'c', scopes: ['keys:read'] } })).statusCode, 201);
});

test('route policies may name routes as the docs write them', async (t) => {
  const h = await withLimits(t, { policies: { one: { limit: 1, window: 60 } }, routes: { 'GET /v1/keys/{id}': 'one' } });
  const key = await h.createKey(['keys:read']);
  assert.equal((await h.get(`/v1/keys/${key.id}`)).statusCode, 200);
  assertProblem(await h.get(`/v1/keys/${key.id}`), 429, 'rate-limited');
  assert.equal((await h.get('/v1/keys')).statusCode, 200);
});

test('a rate-limit configuration naming an unknown route or policy stops startup', async (t) => {
  await assert.rejects(withLimits(t, { policies: { one: { limit: 1, window: 60 } }, routes: { 'GET /v1/nothing': 'one' } }), /GET \/v1\/nothing/);
  await assert.rejects(withLimits(t, { policies: {}, perKey: 'missing' }), /rateLimits\.perKey: no policy named missing/);
});

test('a HEAD request counts once, like its GET', async (t) => {
  const h = await withLimits(t, { policies: { two: { limit: 2, window: 60 } }, perKey: 'two' });
  const head = await h.request('HEAD', '/v1/keys');
  assert.equal(head.statusCode, 200);
  assert.equal(head.headers['x-ratelimit-remaining'], '1');
  assertAllowed(await h.get('/v1/keys'), 'two', 2, 60, 0);
});

test('a burst larger or smaller than the limit shapes the first requests', async (t) => {
  const h = await withLimits(t, { policies: { smooth: { limit: 60, window: 60, burst: 2 } }, perKey: 'smooth' });
  const key = await h.createKey(['keys:read']);
  assert.equal((await h.get('/v1/keys', { key: key.secret })).statusCode, 200);
  assert.equal((await h.get('/v1/keys', { key: key.secret })).statusCode, 200);
  const refused = await h.get('/v1/keys', { key: key.secret });
  assertProblem(refused, 429, 'rate-limited');
  assert.equal(refused.headers['retry-after'], '1');
  h.clock.advance(1_000);
  assert.equal((await h.get('/v1/keys', { key: key.secret })).statusCode, 200);
});

test('10,000 distinct addresses hammering at once leave no state behind once their window has passed', async (t) => {
  const h = await withLimits(t, { policies: { ip: { limit: 5, window: 60 } }, perIp: 'ip' }, { PORTCULLIS_TRUST_PROXY: '127.0.0.1' });
  const entries = async (): Promise<number> => Number(/^portcullis_rate_limit_memory_entries (\d+)$/m.exec((await h.get('/metrics')).body)?.[1]);
  const addresses = Array.from({ length: 10_000 }, (_, i) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);
  for (let i = 0; i < addresses.length; i += 500) {
    const batch = await Promise.all(addresses.slice(i, i + 500).map((a) => h.get('/v1/keys', { key: null, headers: { 'x-forwarded-for': a } })));
    assert.ok(batch.every((r) => r.statusCode === 401));
  }
  assert.equal(await entries(), 10_000);
  // Each address spent one request, earned back after window / limit = 12 s.
  h.clock.advance(11_000);
  assert.equal(await entries(), 10_000);
  h.clock.advance(1_000);
  assert.equal(await entries(), 0);
});
