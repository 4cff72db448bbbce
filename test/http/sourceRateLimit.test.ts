import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import { sign as octokitSign } from '@octokit/webhooks-methods';
import type { ProcessStep } from '../../src/queue/worker.ts';
import { assertProblem } from '../harness/authSuite.ts';
import { queryRows } from '../harness/db.ts';
import { TEST_REDIS_URL, requireRedis, uniquePolicyName } from '../harness/redis.ts';
import { startHarness } from '../harness/startHarness.ts';
import type { Harness } from '../harness/startHarness.ts';
import { startTcpProxy } from '../harness/tcpProxy.ts';

const SECRET = 'github-test-secret';

interface Setup {
  h: Harness;
  sourceId: string;
  deliver(delivery: string, secret?: string): ReturnType<Harness['post']>;
}

async function setup(
  t: TestContext,
  options: { mode: 'reject' | 'throttle'; policy?: Record<string, unknown>; policyName?: string; redisUrl?: string; steps?: ProcessStep[] },
): Promise<Setup> {
  const name = options.policyName ?? 'github';
  const h = await startHarness(t, {
    steps: options.steps ?? [],
    env: {
      PORTCULLIS_RATE_LIMITS: JSON.stringify({ policies: { [name]: options.policy ?? { limit: 2, window: 60 } }, timeoutMs: 200 }),
      PORTCULLIS_PROCESSING: JSON.stringify({ pollMs: 10, backoffBaseMs: 1, backoffMaxMs: 1 }),
      ...(options.redisUrl ? { PORTCULLIS_REDIS_URL: options.redisUrl } : {}),
    },
  });
  const res = await h.post('/v1/sources', { body: { name: 'GitHub', slug: 'gh', type: 'github', secret: SECRET, rateLimitPolicy: name, rateLimitMode: options.mode } });
  assert.equal(res.statusCode, 201, res.body);
  const sourceId = res.json<{ id: string }>().id;
  return {
    h,
    sourceId,
    async deliver(delivery, secret = SECRET) {
      const body = JSON.stringify({ action: 'opened', delivery });
      return h.post('/in/gh', { key: null, payload: body, headers: { 'content-type': 'application/json', 'x-github-event': 'issues', 'x-github-delivery': delivery, 'x-hub-signature-256': await octokitSign(secret, body) } });
    },
  };
}

const eventCount = async (h: Harness): Promise<number> => Number((await queryRows<{ n: number | string }>(h, 'SELECT count(*) AS n FROM events'))[0]!.n);

async function eventually(what: string, check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Waits long enough for the worker (polling every 10 ms) to have done anything it was going to. */
const settle = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 150));

test('a source without a policy is not limited', async (t) => {
  const h = await startHarness(t, { env: { PORTCULLIS_RATE_LIMITS: JSON.stringify({ policies: { tiny: { limit: 1, window: 3600 } } }) } });
  await h.post('/v1/sources', { body: { name: 'GitHub', slug: 'gh', type: 'github', secret: SECRET } });
  for (let i = 0; i < 5; i++) {
    const body = JSON.stringify({ i });
    const res = await h.post('/in/gh', { key: null, payload: body, headers: { 'content-type': 'application/json', 'x-github-event': 'push', 'x-github-delivery': `d-${i}`, 'x-hub-signature-256': await octokitSign(SECRET, body) } });
    assert.equal(res.statusCode, 200, res.body);
  }
});

test('reject mode: over the limit is a 429 with Retry-After and nothing is stored; forged deliveries spend none of the budget', async (t) => {
  const { h, sourceId, deliver } = await setup(t, { mode: 'reject' });
  // Signed with the wrong secret: refused by the signature check before the limit is looked at.
  for (let i = 0; i < 5; i++) assertProblem(await deliver(`forged-${i}`, 'not-the-secret'), 401, 'signature-invalid');

  assert.equal((await deliver('d-1')).statusCode, 200);
  const second = await deliver('d-2');
  assert.equal(second.statusCode, 200);
  assert.equal(second.headers['ratelimit-policy'], '"github";q=2;w=60');
  const refused = await deliver('d-3');
  assertProblem(refused, 429, 'rate-limited');
  assert.equal(refused.headers['retry-after'], '30');
  assert.equal(refused.json().policy, 'github');
  assert.equal(await eventCount(h), 2, 'the refused delivery was not stored');

  // The provider retries once the window allows it, and that delivery is stored.
  h.clock.advance(30_000);
  const retried = await deliver('d-3');
  assert.equal(retried.statusCode, 200, retried.body);
  assert.equal(retried.json().duplicate, false);
  assert.equal(await eventCount(h), 3);

  const metrics = (await h.get('/metrics')).body;
  assert.match(metrics, new RegExp(`^portcullis_webhooks_rate_limited_total\\{source="${sourceId}",mode="reject"\\} 1$`, 'm'));
  assert.match(metrics, new RegExp(`^portcullis_webhooks_rejected_total\\{source="${sourceId}",reason="bad-signature"\\} 5$`, 'm'));
});

test('throttle mode: every delivery is accepted and stored, and processing is spread out at the policy rate without counting attempts', async (t) => {
  const processedAt: number[] = [];
  let clock: () => Date = () => new Date();
  const { h, sourceId, deliver } = await setup(t, { mode: 'throttle', steps: [{ name: 'record', run: async () => void processedAt.push(clock().getTime()) }] });
  clock = h.clock;
  const start = h.clock().getTime();

  const answers = await Promise.all(['d-1', 'd-2', 'd-3', 'd-4', 'd-5'].map((d) => deliver(d)));
  assert.deepEqual(answers.map((r) => r.statusCode), [200, 200, 200, 200, 200]);
  assert.equal(await eventCount(h), 5);
  const ids = answers.map((r) => r.json<{ eventId: string }>().eventId);

  // Burst 2, then one per 30 s (2 per 60 s).
  await eventually('the burst is processed', async () => processedAt.length === 2);
  await settle();
  assert.equal(processedAt.length, 2, 'the rest waits');
  for (const expected of [3, 4, 5]) {
    h.clock.advance(29_000);
    await settle();
    assert.equal(processedAt.length, expected - 1, 'not before its slot');
    h.clock.advance(1_000);
    await eventually(`delivery ${expected} is processed`, async () => processedAt.length === expected);
  }
  assert.deepEqual(processedAt.map((at) => at - start), [0, 0, 30_000, 60_000, 90_000]);

  for (const id of ids) {
    const event = (await h.get(`/v1/events/${id}`)).json<{ status: string; jobs: { attempts: { attempt: number; outcome: string }[] }[] }>();
    assert.equal(event.status, 'processed');
    assert.deepEqual(event.jobs[0]!.attempts.map((a) => [a.attempt, a.outcome]), [[1, 'done']], 'a postponement is not an attempt');
  }
  const metrics = (await h.get('/metrics')).body;
  assert.match(metrics, new RegExp(`^portcullis_webhooks_rate_limited_total\\{source="${sourceId}",mode="throttle"\\} 3$`, 'm'));
  assert.match(metrics, new RegExp(`^portcullis_webhooks_received_total\\{source="${sourceId}",type="github.issues.opened"\\} 5$`, 'm'));
});

test('Redis down: reject mode follows the policy (closed: 503, nothing stored; open: stored); throttle mode stores and waits', async (t) => {
  if (!(await requireRedis(t))) return;
  const direct = new URL(TEST_REDIS_URL);
  const proxy = await startTcpProxy({ host: direct.hostname, port: Number(direct.port || 6379) });
  t.after(() => proxy.close());
  const redisUrl = proxy.via(TEST_REDIS_URL);

  const closed = await setup(t, { mode: 'reject', policyName: uniquePolicyName('closed'), redisUrl, policy: { limit: 100, window: 60 } });
  const open = await setup(t, { mode: 'reject', policyName: uniquePolicyName('open'), redisUrl, policy: { limit: 100, window: 60, onStoreError: 'open' } });
  let processed = 0;
  const throttled = await setup(t, { mode: 'throttle', policyName: uniquePolicyName('throttle'), redisUrl, policy: { limit: 100, window: 60 }, steps: [{ name: 'count', run: async () => void processed++ }] });
  for (const s of [closed, open]) assert.equal((await s.deliver('before')).statusCode, 200);
  await eventually('Redis reachable by the throttled worker', async () => (await throttled.deliver('before')).statusCode === 200 && processed === 1);

  proxy.cut();
  const refused = await closed.deliver('while-down');
  assertProblem(refused, 503, 'rate-limiter-unavailable');
  assert.equal(refused.headers['retry-after'], '1');
  assert.equal(await eventCount(closed.h), 1);
  assert.equal((await open.deliver('while-down')).statusCode, 200);
  assert.equal(await eventCount(open.h), 2);

  // Acknowledged and stored; processing waits for the limiter (the policy fails closed).
  assert.equal((await throttled.deliver('while-down')).statusCode, 200);
  assert.equal(await eventCount(throttled.h), 2);
  throttled.h.clock.advance(1_000);
  await settle();
  assert.equal(processed, 1);

  proxy.restore();
  await eventually('processed once Redis is back', async () => {
    throttled.h.clock.advance(1_000);
    return processed === 2;
  });
  // Each instance's Redis client reconnects on its own schedule.
  let n = 0;
  await eventually('the closed policy admits again', async () => (await closed.deliver(`after-${n++}`)).statusCode === 200);
});
