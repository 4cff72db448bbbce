import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import { generateApiKey } from '../../src/core/apiKeys.ts';
import { assertProblem, runAuthSuite } from '../harness/authSuite.ts';
import { startHarness } from '../harness/startHarness.ts';
import type { Harness } from '../harness/startHarness.ts';

interface Verdict {
  valid: boolean;
  code: string;
  keyId: string | null;
  scopes: string[] | null;
  metadata: Record<string, unknown> | null;
  rateLimit: { policy: string; limit: number; remaining: number; retryAfterSeconds: number } | null;
  quota: { limit: number; remaining: number; resetsAt: string } | null;
}

async function verify(h: Harness, body: Record<string, unknown>, caller?: string): Promise<Verdict> {
  const res = await h.post('/v1/keys/verify', { body, ...(caller ? { key: caller } : {}) });
  assert.equal(res.statusCode, 200, res.body);
  return res.json<Verdict>();
}

/** The key with its last checksum character changed (to a different one: a same-character swap would still be valid). */
function badChecksum(key: string): string {
  return key.slice(0, -1) + (key.endsWith('x') ? 'y' : 'x');
}

function withPolicies(t: TestContext): Promise<Harness> {
  return startHarness(t, { env: { PORTCULLIS_RATE_LIMITS: JSON.stringify({ policies: { two: { limit: 2, window: 60 } } }) } });
}

runAuthSuite({ method: 'POST', url: '/v1/keys/verify', scope: 'keys:read', body: { key: 'pcl_x' } });

test('a valid key verifies with its details; a scope it lacks does not', async (t) => {
  const h = await startHarness(t);
  const app = await h.createKey(['keys:read']);
  const customerKey = await h.createKey(['keys:read', 'usage:read'], { customer: 'acme', metadata: { plan: 'pro' } });

  const ok = await verify(h, { key: customerKey.secret }, app.secret);
  assert.equal(ok.valid, true);
  assert.equal(ok.code, 'valid');
  assert.equal(ok.keyId, customerKey.id);
  assert.deepEqual(ok.scopes, ['keys:read', 'usage:read']);
  assert.deepEqual(ok.metadata, { plan: 'pro' });
  assert.equal(ok.rateLimit, null);
  assert.equal(ok.quota, null);

  assert.equal((await verify(h, { key: customerKey.secret, scope: 'usage:read' }, app.secret)).valid, true);
  const lacking = await verify(h, { key: customerKey.secret, scope: 'keys:write' }, app.secret);
  assert.equal(lacking.valid, false);
  assert.equal(lacking.code, 'scope-missing');
});

test('malformed, unknown, revoked, expired and rotated keys are invalid, with their reason and no details', async (t) => {
  const h = await startHarness(t);
  const revoked = await h.createKey(['keys:read']);
  await h.revokeKey(revoked.id);
  const expiring = await h.createKey(['keys:read'], { expiresAt: new Date(h.clock().getTime() + 60_000).toISOString() });
  const rotating = await h.createKey(['keys:read']);
  assert.equal((await h.post(`/v1/keys/${rotating.id}/rotate`, { body: {} })).statusCode, 200);
  h.clock.advance(120_000);

  const cases: [string, string][] = [
    ['pcl_nonsense', 'malformed'],
    [badChecksum(generateApiKey()), 'malformed'],
    [generateApiKey(), 'unknown'],
    [revoked.secret, 'revoked'],
    [expiring.secret, 'expired'],
    [rotating.secret, 'rotated'],
  ];
  for (const [key, code] of cases) {
    const verdict = await verify(h, { key });
    assert.equal(verdict.valid, false, code);
    assert.equal(verdict.code, code);
    assert.equal(verdict.keyId, null);
    assert.equal(verdict.metadata, null);
  }
});

test('verification applies the key’s rate limit, in the same bucket as its own API calls', async (t) => {
  const h = await withPolicies(t);
  const key = await h.createKey(['keys:read'], { rateLimitPolicy: 'two' });
  const first = await verify(h, { key: key.secret });
  assert.equal(first.valid, true);
  assert.deepEqual(first.rateLimit && [first.rateLimit.policy, first.rateLimit.limit, first.rateLimit.remaining], ['two', 2, 1]);
  // Its own API call takes the second request.
  assert.equal((await h.get('/v1/keys', { key: key.secret })).statusCode, 200);
  const limited = await verify(h, { key: key.secret });
  assert.equal(limited.valid, false);
  assert.equal(limited.code, 'rate-limited');
  assert.equal(limited.rateLimit?.remaining, 0);
  assert.equal(limited.rateLimit?.retryAfterSeconds, 30);
});

test('verification takes cost units from the key’s quota and says what remains', async (t) => {
  const h = await startHarness(t);
  const key = await h.createKey(['keys:read'], { quota: { limit: 10 } });
  const v = await verify(h, { key: key.secret, cost: 4 });
  assert.deepEqual(v.quota && [v.quota.limit, v.quota.remaining], [10, 6]);
  assert.equal((await verify(h, { key: key.secret, cost: 6 })).quota?.remaining, 0);
  const over = await verify(h, { key: key.secret, cost: 1 });
  assert.equal(over.valid, false);
  assert.equal(over.code, 'quota-exceeded');
  assert.equal((await verify(h, { key: key.secret, cost: 0 })).valid, true, 'a zero-cost check still passes');
  assertProblem(await h.get('/v1/keys', { key: key.secret }), 429, 'quota-exceeded');

  const usage = (await h.get(`/v1/usage?keyId=${key.id}`)).json<{ data: { route: string; requests: number; units: number }[] }>().data;
  assert.deepEqual(
    usage.map((r) => [r.route, r.requests, r.units]),
    [['POST /v1/keys/verify', 3, 10]],
  );
});

test('verify refuses malformed requests with problems, and the key is never logged', async (t) => {
  const h = await startHarness(t);
  const key = await h.createKey(['keys:read']);
  for (const body of [{}, { key: 5 }, { key: key.secret, cost: -1 }, { key: key.secret, cost: '1' }, { key: key.secret, scope: 'nope' }, { key: key.secret, extra: true }, { key: '' }]) {
    assertProblem(await h.post('/v1/keys/verify', { body }), 400, 'validation-failed');
  }
  assertProblem(await h.post('/v1/keys/verify', { payload: '{"key":', headers: { 'content-type': 'application/json' } }), 400, 'malformed-request');
  assertProblem(await h.post('/v1/keys/verify', { payload: 'key', headers: { 'content-type': 'text/plain' } }), 415, 'unsupported-media-type');
  assertProblem(await h.post('/v1/keys/verify', { payload: JSON.stringify({ key: 'x'.repeat(2_000_000) }), headers: { 'content-type': 'application/json' } }), 413, 'payload-too-large');
  await verify(h, { key: key.secret });
  assert.ok(!h.logText().includes(key.secret), 'the verified key is not in the log');
});
