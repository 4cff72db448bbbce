import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import { assertProblem } from '../harness/authSuite.ts';
import { TEST_REDIS_URL, requireRedis, uniquePolicyName } from '../harness/redis.ts';
import { startHarness } from '../harness/startHarness.ts';
import type { Harness } from '../harness/startHarness.ts';
import { startTcpProxy } from '../harness/tcpProxy.ts';
import type { TcpProxy } from '../harness/tcpProxy.ts';

type Policies = Record<string, { limit: number; window: number; onStoreError?: 'open' | 'closed' }>;

function redisHarness(t: TestContext, redisUrl: string, limits: { policies: Policies; perIp?: string; perKey?: string }): Promise<Harness> {
  return startHarness(t, { env: { PORTCULLIS_REDIS_URL: redisUrl, PORTCULLIS_RATE_LIMITS: JSON.stringify({ ...limits, timeoutMs: 200 }) } });
}

async function viaProxy(t: TestContext): Promise<{ proxy: TcpProxy; url: string }> {
  const direct = new URL(TEST_REDIS_URL);
  const proxy = await startTcpProxy({ host: direct.hostname, port: Number(direct.port || 6379) });
  t.after(() => proxy.close());
  return { proxy, url: proxy.via(TEST_REDIS_URL) };
}

async function eventually(what: string, check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

test('two apps sharing Redis let exactly the limit through between them, under concurrency', async (t) => {
  if (!(await requireRedis(t))) return;
  const ip = uniquePolicyName('ip');
  const limits = { policies: { [ip]: { limit: 10, window: 3600 } }, perIp: ip };
  const a = await redisHarness(t, TEST_REDIS_URL, limits);
  const b = await redisHarness(t, TEST_REDIS_URL, limits);
  const results = await Promise.all(Array.from({ length: 60 }, (_, i) => (i % 2 ? a : b).get('/v1/keys')));
  assert.equal(results.filter((r) => r.statusCode === 200).length, 10);
  assert.equal(results.filter((r) => r.statusCode === 429).length, 50);
  for (const r of results.filter((r) => r.statusCode === 429)) assert.equal(r.json().policy, ip);
});

test('with Redis, the headers and the window reset behave as in memory', async (t) => {
  if (!(await requireRedis(t))) return;
  const name = uniquePolicyName('key');
  const h = await redisHarness(t, TEST_REDIS_URL, { policies: { [name]: { limit: 2, window: 60 } }, perKey: name });
  const first = await h.get('/v1/keys');
  assert.equal(first.statusCode, 200);
  assert.equal(first.headers['ratelimit-policy'], `"${name}";q=2;w=60`);
  assert.equal(first.headers.ratelimit, `"${name}";r=1;t=30`);
  assert.equal((await h.get('/v1/keys')).headers['x-ratelimit-remaining'], '0');
  const refused = await h.get('/v1/keys');
  assertProblem(refused, 429, 'rate-limited');
  assert.equal(refused.headers['retry-after'], '30');
  h.clock.advance(60_000);
  assert.equal((await h.get('/v1/keys')).headers.ratelimit, `"${name}";r=1;t=30`);
});

test('Redis down: writes fail closed with 503 at once, reads fail open, a policy can choose, and limits return with Redis', async (t) => {
  if (!(await requireRedis(t))) return;
  const { proxy, url } = await viaProxy(t);
  const key = uniquePolicyName('key');
  const ip = uniquePolicyName('ip-open');
  const h = await redisHarness(t, url, { policies: { [key]: { limit: 100, window: 60 }, [ip]: { limit: 100, window: 60, onStoreError: 'open' } }, perKey: key });
  assert.ok((await h.get('/v1/keys')).headers.ratelimit, 'limited through the proxy');
  assert.ok(proxy.connections > 0);

  proxy.cut();
  const started = Date.now();
  const write = await h.post('/v1/keys', { body: { name: 'x', scopes: ['keys:read'] } });
  assertProblem(write, 503, 'rate-limiter-unavailable');
  assert.equal(write.headers['retry-after'], '1');
  assert.ok(Date.now() - started < 1000, 'no waiting for a reconnect');
  const warning = h
    .logText()
    .split('\n')
    .find((line) => line.includes('rate-limit store unavailable'));
  assert.equal(JSON.parse(warning!).requestId, write.headers['x-request-id'], 'logged with the request it refused');
  const read = await h.get('/v1/keys');
  assert.equal(read.statusCode, 200);
  assert.equal(read.headers.ratelimit, undefined);
  assert.equal((await h.get('/v1/keys')).json().data.length, 1, 'the refused write wrote nothing');

  const metrics = (await h.get('/metrics')).body;
  assert.match(metrics, new RegExp(`portcullis_rate_limit_store_errors_total\\{policy="${key}",outcome="refused"\\} 1`));
  assert.match(metrics, new RegExp(`portcullis_rate_limit_store_errors_total\\{policy="${key}",outcome="allowed"\\} [1-9]`));
  assert.doesNotMatch(h.logText(), new RegExp(url.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')), 'the Redis URL is not logged');

  proxy.restore();
  await eventually('limits apply again once Redis is back', async () => (await h.get('/v1/keys')).headers.ratelimit !== undefined);
  assert.equal((await h.post('/v1/keys', { body: { name: 'y', scopes: ['keys:read'] } })).statusCode, 201);
});

test('a policy that fails open lets writes through while Redis is down', async (t) => {
  if (!(await requireRedis(t))) return;
  const { proxy, url } = await viaProxy(t);
  const open = uniquePolicyName('open');
  const h = await redisHarness(t, url, { policies: { [open]: { limit: 100, window: 60, onStoreError: 'open' } }, perKey: open });
  assert.equal((await h.get('/v1/keys')).statusCode, 200);
  proxy.cut();
  const res = await h.post('/v1/keys', { body: { name: 'x', scopes: ['keys:read'] } });
  assert.equal(res.statusCode, 201, res.body);
});

test('a hung Redis never hangs a request: the step times out and the policy decides', async (t) => {
  if (!(await requireRedis(t))) return;
  const { proxy, url } = await viaProxy(t);
  const key = uniquePolicyName('key');
  const h = await redisHarness(t, url, { policies: { [key]: { limit: 100, window: 60 } }, perKey: key });
  assert.equal((await h.get('/v1/keys')).statusCode, 200);
  proxy.stall();
  const started = Date.now();
  const [write, read] = await Promise.all([h.post('/v1/keys', { body: { name: 'x', scopes: ['keys:read'] } }), h.get('/v1/keys')]);
  const took = Date.now() - started;
  assertProblem(write, 503, 'rate-limiter-unavailable');
  assert.equal(read.statusCode, 200);
  assert.ok(took < 1500, `bounded by the 200 ms timeout, took ${took} ms`);
});
