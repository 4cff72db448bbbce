import assert from 'node:assert/strict';
import { test } from 'node:test';
import { generateApiKey } from '../../src/core/apiKeys.ts';
import { LIST_LIMIT_MAX } from '../../src/core/cursor.ts';
import { assertProblem, runAuthSuite } from '../harness/authSuite.ts';
import { startHarness } from '../harness/startHarness.ts';
import type { Harness } from '../harness/startHarness.ts';

// Authentication runs before the route looks the key up, so an id that names no key will do.
const SOME_KEY = '/v1/keys/key_01jdx3m5a8q2v7k4r9t6w1y3zb';

runAuthSuite({ method: 'POST', url: '/v1/keys', scope: 'keys:write', body: { name: 'x', scopes: ['keys:read'] } });
runAuthSuite({ method: 'GET', url: '/v1/keys', scope: 'keys:read' });
runAuthSuite({ method: 'GET', url: SOME_KEY, scope: 'keys:read' });
runAuthSuite({ method: 'PATCH', url: SOME_KEY, scope: 'keys:write', body: { name: 'renamed' } });
runAuthSuite({ method: 'POST', url: `${SOME_KEY}/revoke`, scope: 'keys:write' });
runAuthSuite({ method: 'POST', url: `${SOME_KEY}/rotate`, scope: 'keys:write', body: { gracePeriodSeconds: 0 } });
// And on a key that exists, so a passing caller reaches the change itself.
runAuthSuite({ method: 'POST', url: async (h) => `/v1/keys/${(await h.createKey(['keys:read'])).id}/rotate`, scope: 'keys:write' });

async function allKeys(h: Harness): Promise<{ data: Record<string, unknown>[] }> {
  const res = await h.get(`/v1/keys?limit=${LIST_LIMIT_MAX}`);
  assert.equal(res.statusCode, 200);
  return res.json();
}

/** The id of the admin key the harness bootstrapped (the first key in the store). */
async function adminKeyId(h: Harness): Promise<string> {
  const first = (await allKeys(h)).data[0];
  assert.deepEqual(first?.scopes, ['admin']);
  return String(first.id);
}

test('a keys:write key cannot mint an admin key or any scope it does not hold', async (t) => {
  const h = await startHarness(t);
  const writer = await h.createKey(['keys:write']);
  const before = await allKeys(h);
  for (const [scopes, missing] of [
    [['admin'], 'admin'],
    [['metrics:read'], 'metrics:read'],
    [['sources:write'], 'sources:write'],
    [['keys:read', 'admin'], 'admin'],
    [['keys:write', 'events:read'], 'events:read'],
  ] as const) {
    const res = await h.post('/v1/keys', { key: writer.secret, body: { name: 'escalate', scopes } });
    const problem = assertProblem(res, 403, 'scope-missing');
    assert.equal(problem.scope, missing);
    assert.match(String(problem.detail), new RegExp(missing));
    assert.ok(!res.body.includes('pcl_'), 'a refused creation returns no secret');
  }
  assert.deepEqual(await allKeys(h), before);
  // What it holds, it may grant.
  assert.equal((await h.post('/v1/keys', { key: writer.secret, body: { name: 'ok', scopes: ['keys:read', 'keys:write'] } })).statusCode, 201);
});

test('a keys:write key cannot raise its own scopes beyond what it holds', async (t) => {
  const h = await startHarness(t);
  const writer = await h.createKey(['keys:write']);
  const before = await allKeys(h);
  for (const scopes of [['admin'], ['keys:write', 'admin'], ['keys:write', 'metrics:read']]) {
    const problem = assertProblem(await h.patch(`/v1/keys/${writer.id}`, { key: writer.secret, body: { scopes } }), 403, 'scope-missing');
    assert.ok(scopes.includes(String(problem.scope)));
  }
  assert.deepEqual(await allKeys(h), before);
  // Still without the scopes it tried to take.
  assertProblem(await h.get('/metrics', { key: writer.secret }), 403, 'scope-missing');
  assertProblem(await h.post('/v1/keys', { key: writer.secret, body: { name: 'x', scopes: ['admin'] } }), 403, 'scope-missing');
});

test("a keys:write key cannot raise another key's scopes beyond what it holds", async (t) => {
  const h = await startHarness(t);
  const writer = await h.createKey(['keys:write']);
  const accomplice = await h.createKey(['keys:read']);
  const before = await allKeys(h);
  for (const scopes of [['admin'], ['metrics:read'], ['keys:read', 'sources:read']]) {
    assertProblem(await h.patch(`/v1/keys/${accomplice.id}`, { key: writer.secret, body: { scopes } }), 403, 'scope-missing');
  }
  assert.deepEqual(await allKeys(h), before);
  assertProblem(await h.get('/metrics', { key: accomplice.secret }), 403, 'scope-missing');
});

test('a keys:write key cannot rotate an admin key, so it never receives the admin secret', async (t) => {
  const h = await startHarness(t);
  const writer = await h.createKey(['keys:write']);
  const admins = [await adminKeyId(h), (await h.createKey(['admin'])).id];
  const before = await allKeys(h);
  for (const id of admins) {
    for (const body of [{}, { gracePeriodSeconds: 3600 }]) {
      const res = await h.post(`/v1/keys/${id}/rotate`, { key: writer.secret, body });
      const problem = assertProblem(res, 403, 'scope-missing');
      assert.equal(problem.scope, 'admin');
      assert.equal(problem.secret, undefined);
      assert.ok(!res.body.includes('pcl_'));
    }
  }
  assert.deepEqual(await allKeys(h), before);
  // The admin key was not rotated: its secret still works.
  assert.equal((await h.get('/v1/keys', { key: h.adminKey })).statusCode, 200);
});

test('a keys:write key cannot revoke or update a key holding scopes it lacks', async (t) => {
  const h = await startHarness(t);
  const writer = await h.createKey(['keys:write']);
  const metricsReader = await h.createKey(['metrics:read']);
  const targets = [await adminKeyId(h), metricsReader.id];
  const before = await allKeys(h);
  for (const id of targets) {
    assertProblem(await h.post(`/v1/keys/${id}/revoke`, { key: writer.secret }), 403, 'scope-missing');
    assertProblem(await h.patch(`/v1/keys/${id}`, { key: writer.secret, body: { name: 'hijacked' } }), 403, 'scope-missing');
    assertProblem(await h.patch(`/v1/keys/${id}`, { key: writer.secret, body: { expiresAt: new Date(h.clock().getTime() + 1000).toISOString() } }), 403, 'scope-missing');
    assertProblem(await h.patch(`/v1/keys/${id}`, { key: writer.secret, body: { scopes: ['keys:read'] } }), 403, 'scope-missing');
    assertProblem(await h.post(`/v1/keys/${id}/rotate`, { key: writer.secret }), 403, 'scope-missing');
  }
  assert.deepEqual(await allKeys(h), before);
  assert.equal((await h.get('/v1/keys', { key: h.adminKey })).statusCode, 200);
  assert.equal((await h.get('/metrics', { key: metricsReader.secret })).statusCode, 200);
});

test('a keys:read key cannot change any key, not even itself', async (t) => {
  const h = await startHarness(t);
  const reader = await h.createKey(['keys:read']);
  const before = await allKeys(h);
  assertProblem(await h.patch(`/v1/keys/${reader.id}`, { key: reader.secret, body: { scopes: ['keys:write'] } }), 403, 'scope-missing');
  assertProblem(await h.post(`/v1/keys/${reader.id}/rotate`, { key: reader.secret }), 403, 'scope-missing');
  assertProblem(await h.post(`/v1/keys/${reader.id}/revoke`, { key: reader.secret }), 403, 'scope-missing');
  assert.deepEqual(await allKeys(h), before);
});

test('secrets are never echoed after creation: get, list, update and revoke show only the prefix', async (t) => {
  const h = await startHarness(t);
  const key = await h.createKey(['keys:read']);
  const rotated = (await h.post(`/v1/keys/${key.id}/rotate`, { body: { gracePeriodSeconds: 60 } })).json<{ secret: string }>();
  const responses = [
    await h.get(`/v1/keys/${key.id}`),
    await h.get('/v1/keys'),
    await h.get(`/v1/keys?limit=1`),
    await h.patch(`/v1/keys/${key.id}`, { body: { name: 'renamed' } }),
    await h.post(`/v1/keys/${key.id}/revoke`),
  ];
  for (const res of responses) {
    assert.equal(res.statusCode, 200, res.body);
    const body = res.json<Record<string, unknown> & { data?: Record<string, unknown>[] }>();
    for (const item of body.data ?? [body]) {
      assert.equal(item.secret, undefined);
      assert.equal(item.previousSecretExpiresAt, undefined);
    }
    for (const secret of [key.secret, rotated.secret, h.adminKey]) {
      assert.ok(!res.body.includes(secret.slice(12)), `${res.body} holds a secret`);
    }
  }
});

test('the log never holds a secret, the admin key or an Authorization header value, even when a secret is sent by mistake', async (t) => {
  const h = await startHarness(t);
  const key = await h.createKey(['keys:write']);
  const rotated = (await h.post(`/v1/keys/${key.id}/rotate`, { body: { gracePeriodSeconds: 60 } })).json<{ secret: string }>();
  const bogusHeader = 'not-a-key-but-a-password-Zx81';
  const wrongChecksum = key.secret.slice(0, -1) + (key.secret.endsWith('A') ? 'B' : 'A');

  // Keys where they belong, and where they do not.
  await h.get('/v1/keys', { key: key.secret });
  await h.get('/v1/keys', { key: rotated.secret });
  await h.get('/v1/keys', { key: null, headers: { authorization: `Bearer ${bogusHeader}` } });
  await h.get('/v1/keys', { key: null, headers: { authorization: `Basic ${bogusHeader}` } });
  await h.get('/v1/keys', { key: wrongChecksum });
  await h.get(`/v1/keys?api_key=${rotated.secret}`);
  await h.get(`/v1/keys?cursor=${rotated.secret}`);
  await h.get(`/v1/keys/${rotated.secret}`);
  await h.get(`/v1/${rotated.secret}`);
  await h.get(`/v1/keys/${rotated.secret}?key=${h.adminKey}`, { key: null });
  await h.post('/v1/keys', { body: { name: 'x', scopes: ['keys:read'], secret: rotated.secret } });
  await h.post('/v1/keys', { body: { name: rotated.secret, scopes: ['nope'] } });
  await h.post('/v1/keys', { payload: `{"apiKey": "${rotated.secret}"`, headers: { 'content-type': 'application/json' } });
  await h.post('/v1/keys', { payload: rotated.secret, headers: { 'content-type': 'text/plain' } });
  await h.patch(`/v1/keys/${key.id}`, { body: { metadata: { leaked: rotated.secret } } });
  await h.post(`/v1/keys/${key.id}/revoke`, { headers: { 'x-api-key': rotated.secret } });

  const log = h.logText();
  assert.match(log, /"route":"\/v1\/keys"/, 'the requests were logged');
  for (const secret of [key.secret, rotated.secret, h.adminKey, wrongChecksum]) {
    // Any long stretch of a secret is a leak, not only the whole key.
    assert.ok(!log.includes(secret.slice(8, 28)), `log holds a secret:\n${log}`);
  }
  assert.ok(!log.includes(bogusHeader), 'log holds an Authorization header value');
  assert.ok(!/bearer/i.test(log), 'log holds an Authorization header');
});

test('a well-formed key with a valid checksum that was never issued is refused as unknown', async (t) => {
  const h = await startHarness(t);
  const res = await h.get('/v1/keys', { key: generateApiKey() });
  const problem = assertProblem(res, 401, 'unauthorized');
  assert.match(String(problem.detail), /not known/);
  assert.match(String(res.headers['www-authenticate']), /^Bearer/);
});

test("a key issued by another Portcullis (another root secret) is refused", async (t) => {
  const h = await startHarness(t);
  const other = await startHarness(t);
  assertProblem(await h.get('/v1/keys', { key: other.adminKey }), 401, 'unauthorized');
  assertProblem(await other.get('/v1/keys', { key: h.adminKey }), 401, 'unauthorized');
});

test('every 401 carries WWW-Authenticate: Bearer, whatever the reason', async (t) => {
  const h = await startHarness(t);
  const revoked = await h.createKey(['keys:read']);
  await h.revokeKey(revoked.id);
  const expiring = await h.createKey(['keys:read'], { expiresAt: new Date(h.clock().getTime() + 1000).toISOString() });
  const rotatedAway = await h.createKey(['keys:read']);
  assert.equal((await h.post(`/v1/keys/${rotatedAway.id}/rotate`)).statusCode, 200);
  h.clock.advance(1000);
  const good = generateApiKey();
  const badChecksum = good.slice(0, -1) + (good.endsWith('A') ? 'B' : 'A');

  const cases: [string, Record<string, string>, RegExp][] = [
    ['missing', {}, /send an API key/],
    ['not bearer', { authorization: 'Token abc' }, /malformed/],
    ['empty bearer', { authorization: 'Bearer ' }, /malformed/],
    ['bad checksum', { authorization: `Bearer ${badChecksum}` }, /malformed/],
    ['unknown', { authorization: `Bearer ${generateApiKey()}` }, /not known/],
    ['revoked', { authorization: `Bearer ${revoked.secret}` }, /revoked/],
    ['expired', { authorization: `Bearer ${expiring.secret}` }, /expired/],
    ['rotated', { authorization: `Bearer ${rotatedAway.secret}` }, /rotated/],
  ];
  for (const [name, headers, detail] of cases) {
    const res = await h.get('/v1/keys', { key: null, headers });
    const problem = assertProblem(res, 401, 'unauthorized');
    assert.match(String(res.headers['www-authenticate']), /^Bearer\b/, name);
    assert.match(String(problem.detail), detail, name);
  }
});
