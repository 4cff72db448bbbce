import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LIST_LIMIT_MAX } from '../../src/core/cursor.ts';
import { encodeCursor } from '../../src/core/cursor.ts';
import { assertProblem } from '../harness/authSuite.ts';
import { startHarness } from '../harness/startHarness.ts';
import type { Harness } from '../harness/startHarness.ts';

const UNKNOWN_ID = 'key_01jdx3m5a8q2v7k4r9t6w1y3zb';
/** One byte over the default 1 MiB body limit. */
const OVERSIZED = 1024 * 1024 + 1;

/** Every key as the API shows it: a rejected write must leave this unchanged. */
async function allKeys(h: Harness): Promise<unknown> {
  const res = await h.get(`/v1/keys?limit=${LIST_LIMIT_MAX}`);
  assert.equal(res.statusCode, 200);
  return res.json();
}

/** A key to change, and a snapshot of the store taken after creating it. */
async function target(h: Harness): Promise<{ id: string; secret: string; before: unknown }> {
  const key = await h.createKey(['keys:read'], { metadata: { plan: 'pro' } });
  return { ...key, before: await allKeys(h) };
}

// The write routes with a JSON body, each with a valid body to start from.
const BODY_ROUTES = [
  { method: 'POST', name: 'create', path: (_id: string) => '/v1/keys', valid: { name: 'x', scopes: ['keys:read'] } },
  { method: 'PATCH', name: 'update', path: (id: string) => `/v1/keys/${id}`, valid: { name: 'renamed' } },
  { method: 'POST', name: 'rotate', path: (id: string) => `/v1/keys/${id}/rotate`, valid: { gracePeriodSeconds: 60 } },
] as const;

for (const route of BODY_ROUTES) {
  test(`${route.name}: malformed JSON is a 400 malformed-request and writes nothing`, async (t) => {
    const h = await startHarness(t);
    const { id, before } = await target(h);
    for (const payload of ['{"name": "x",', '{name: x}', 'nul', '[1,2', '"unterminated']) {
      const res = await h.request(route.method, route.path(id), { payload, headers: { 'content-type': 'application/json' } });
      assertProblem(res, 400, 'malformed-request');
    }
    assert.deepEqual(await allKeys(h), before);
  });

  test(`${route.name}: an unknown field is a 400 validation-failed naming it, and writes nothing`, async (t) => {
    const h = await startHarness(t);
    const { id, before } = await target(h);
    const res = await h.request(route.method, route.path(id), { body: { ...route.valid, colour: 'red' } });
    const problem = assertProblem(res, 400, 'validation-failed');
    assert.match(String(problem.detail), /colour/);
    assert.deepEqual(await allKeys(h), before);
  });

  test(`${route.name}: a text/plain body is a 415 and writes nothing`, async (t) => {
    const h = await startHarness(t);
    const { id, before } = await target(h);
    const res = await h.request(route.method, route.path(id), { payload: JSON.stringify(route.valid), headers: { 'content-type': 'text/plain' } });
    assertProblem(res, 415, 'unsupported-media-type');
    assert.deepEqual(await allKeys(h), before);
  });

  test(`${route.name}: a body over the 1 MiB limit is a 413 and writes nothing`, async (t) => {
    const h = await startHarness(t);
    const { id, before } = await target(h);
    const payload = JSON.stringify({ ...route.valid, padding: 'a'.repeat(OVERSIZED) });
    const res = await h.request(route.method, route.path(id), { payload, headers: { 'content-type': 'application/json' } });
    const problem = assertProblem(res, 413, 'payload-too-large');
    assert.ok(!String(problem.detail).includes('aaaa'));
    assert.deepEqual(await allKeys(h), before);
  });

  test(`${route.name}: a JSON body that is not an object is a 400 and writes nothing`, async (t) => {
    const h = await startHarness(t);
    const { id, before } = await target(h);
    for (const body of [[route.valid], 'x', 5, null]) {
      const res = await h.request(route.method, route.path(id), { payload: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
      assertProblem(res, 400, 'validation-failed');
    }
    assert.deepEqual(await allKeys(h), before);
  });
}

test('create: wrong types are a 400 validation-failed, never coerced, and write nothing', async (t) => {
  const h = await startHarness(t);
  const before = await allKeys(h);
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ name: 5, scopes: ['keys:read'] }, /name/],
    [{ name: true, scopes: ['keys:read'] }, /name/],
    [{ name: 'x', scopes: 'keys:read' }, /scopes/],
    [{ name: 'x', scopes: [5] }, /scopes/],
    [{ name: 'x', scopes: ['keys:read'], expiresAt: 123 }, /expiresAt/],
    [{ name: 'x', scopes: ['keys:read'], expiresAt: 'tomorrow' }, /expiresAt/],
    [{ name: 'x', scopes: ['keys:read'], customer: 7 }, /customer/],
    [{ name: 'x', scopes: ['keys:read'], metadata: 'plan=pro' }, /metadata/],
    [{ name: 'x', scopes: ['keys:read'], metadata: ['pro'] }, /metadata/],
  ];
  for (const [body, field] of cases) {
    const problem = assertProblem(await h.post('/v1/keys', { body }), 400, 'validation-failed');
    assert.match(String(problem.detail), field, JSON.stringify(body));
  }
  assert.deepEqual(await allKeys(h), before);
});

test('create: missing required fields are a 400 naming the field, and write nothing', async (t) => {
  const h = await startHarness(t);
  const before = await allKeys(h);
  assert.match(String(assertProblem(await h.post('/v1/keys', { body: { scopes: ['keys:read'] } }), 400, 'validation-failed').detail), /name/);
  assert.match(String(assertProblem(await h.post('/v1/keys', { body: { name: 'x' } }), 400, 'validation-failed').detail), /scopes/);
  assertProblem(await h.post('/v1/keys', { body: {} }), 400, 'validation-failed');
  assertProblem(await h.post('/v1/keys'), 400, 'validation-failed');
  assert.deepEqual(await allKeys(h), before);
});

test('create: empty names, empty or duplicate scope lists and unknown scope names are a 400, and write nothing', async (t) => {
  const h = await startHarness(t);
  const before = await allKeys(h);
  for (const body of [
    { name: '', scopes: ['keys:read'] },
    { name: 'x', scopes: [] },
    { name: 'x', scopes: ['keys:read', 'keys:read'] },
    { name: 'x', scopes: ['keys:delete'] },
    { name: 'x', scopes: ['root'] },
    { name: 'x', scopes: ['KEYS:READ'] },
    { name: 'x', scopes: ['keys:read', 'superuser'] },
  ]) {
    assertProblem(await h.post('/v1/keys', { body }), 400, 'validation-failed');
  }
  assert.deepEqual(await allKeys(h), before);
});

test('create: an expiry in the past or now is a 400 validation-failed, and writes nothing', async (t) => {
  const h = await startHarness(t);
  const before = await allKeys(h);
  for (const expiresAt of [new Date(h.clock().getTime() - 1000).toISOString(), h.clock().toISOString(), '2001-01-01T00:00:00Z']) {
    const problem = assertProblem(await h.post('/v1/keys', { body: { name: 'x', scopes: ['keys:read'], expiresAt } }), 400, 'validation-failed');
    assert.match(String(problem.detail), /expiresAt/);
  }
  assert.deepEqual(await allKeys(h), before);
});

test('create: metadata over 8 KiB is a 400 validation-failed, and writes nothing', async (t) => {
  const h = await startHarness(t);
  const before = await allKeys(h);
  const problem = assertProblem(await h.post('/v1/keys', { body: { name: 'x', scopes: ['keys:read'], metadata: { notes: 'n'.repeat(8 * 1024) } } }), 400, 'validation-failed');
  assert.match(String(problem.detail), /metadata/);
  assert.deepEqual(await allKeys(h), before);
  // Just under the limit is fine: the bound is the limit, not something smaller.
  const ok = await h.post('/v1/keys', { body: { name: 'x', scopes: ['keys:read'], metadata: { notes: 'n'.repeat(8 * 1024 - 20) } } });
  assert.equal(ok.statusCode, 201, ok.body);
});

test('update: wrong types are a 400, never coerced, and leave the key unchanged', async (t) => {
  const h = await startHarness(t);
  const { id, before } = await target(h);
  for (const body of [{ name: 5 }, { scopes: 'keys:read' }, { expiresAt: 123 }, { customer: false }, { metadata: 'x' }, { name: null }, { scopes: null }]) {
    assertProblem(await h.patch(`/v1/keys/${id}`, { body }), 400, 'validation-failed');
  }
  assert.deepEqual(await allKeys(h), before);
});

test('update: an empty body is a 400, and leaves the key unchanged', async (t) => {
  const h = await startHarness(t);
  const { id, before } = await target(h);
  assertProblem(await h.patch(`/v1/keys/${id}`, { body: {} }), 400, 'validation-failed');
  assertProblem(await h.patch(`/v1/keys/${id}`), 400, 'validation-failed');
  assert.deepEqual(await allKeys(h), before);
});

test('update: unknown scopes, an empty scope list, a past expiry or metadata over 8 KiB are a 400, and leave the key unchanged', async (t) => {
  const h = await startHarness(t);
  const { id, before } = await target(h);
  for (const body of [
    { scopes: ['keys:admin'] },
    { scopes: [] },
    { expiresAt: new Date(h.clock().getTime() - 1).toISOString() },
    { name: 'renamed', metadata: { notes: 'n'.repeat(8 * 1024) } },
  ]) {
    assertProblem(await h.patch(`/v1/keys/${id}`, { body }), 400, 'validation-failed');
  }
  assert.deepEqual(await allKeys(h), before);
});

test('rotate: a grace period of the wrong type or out of range is a 400, and leaves the key unchanged', async (t) => {
  const h = await startHarness(t);
  const { id, secret, before } = await target(h);
  for (const gracePeriodSeconds of ['60', 1.5, -1, 31 * 24 * 3600, null, true]) {
    assertProblem(await h.post(`/v1/keys/${id}/rotate`, { body: { gracePeriodSeconds } }), 400, 'validation-failed');
  }
  assert.deepEqual(await allKeys(h), before);
  assert.equal((await h.get('/v1/keys', { key: secret })).statusCode, 200);
});

test('list: limit=0, limit=251, limit=abc and unknown query parameters are a 400', async (t) => {
  const h = await startHarness(t);
  for (const query of ['limit=0', `limit=${LIST_LIMIT_MAX + 1}`, 'limit=abc', 'limit=1.5', 'limit=-1', 'limit=', 'offset=10', 'cursor=', 'api_key=x']) {
    const problem = assertProblem(await h.get(`/v1/keys?${query}`), 400, 'validation-failed');
    assert.match(String(problem.detail), /querystring/, query);
  }
  assert.equal((await h.get(`/v1/keys?limit=${LIST_LIMIT_MAX}`)).statusCode, 200);
  assert.equal((await h.get('/v1/keys?limit=1')).statusCode, 200);
});

test('list: a cursor this server did not issue is a 400 invalid-cursor', async (t) => {
  const h = await startHarness(t);
  for (const cursor of ['not-a-cursor', encodeCursor({ s: 'x' }), encodeCursor({}), Buffer.from('[1]').toString('base64url'), encodeCursor({ s: 1.5, x: 'nope' })]) {
    assertProblem(await h.get(`/v1/keys?cursor=${encodeURIComponent(cursor)}`), 400, 'invalid-cursor');
  }
});

test('get, update, revoke and rotate answer 404 not-found for an unknown id, and write nothing', async (t) => {
  const h = await startHarness(t);
  const before = await allKeys(h);
  for (const id of [UNKNOWN_ID, 'nope', 'src_01jdx3m5a8q2v7k4r9t6w1y3zb']) {
    assertProblem(await h.get(`/v1/keys/${id}`), 404, 'not-found');
    assertProblem(await h.patch(`/v1/keys/${id}`, { body: { name: 'x' } }), 404, 'not-found');
    assertProblem(await h.post(`/v1/keys/${id}/revoke`), 404, 'not-found');
    assertProblem(await h.post(`/v1/keys/${id}/rotate`, { body: { gracePeriodSeconds: 0 } }), 404, 'not-found');
  }
  assert.deepEqual(await allKeys(h), before);
});

test('an id longer than 100 characters is a 400 on every route that takes one', async (t) => {
  const h = await startHarness(t);
  const id = `key_${'a'.repeat(100)}`;
  assertProblem(await h.get(`/v1/keys/${id}`), 400, 'validation-failed');
  assertProblem(await h.patch(`/v1/keys/${id}`, { body: { name: 'x' } }), 400, 'validation-failed');
  assertProblem(await h.post(`/v1/keys/${id}/revoke`), 400, 'validation-failed');
  assertProblem(await h.post(`/v1/keys/${id}/rotate`), 400, 'validation-failed');
});

test('rotating a revoked key is a 409 conflict and issues no secret', async (t) => {
  const h = await startHarness(t);
  const key = await h.createKey(['keys:read']);
  await h.revokeKey(key.id);
  const before = await allKeys(h);
  const res = await h.post(`/v1/keys/${key.id}/rotate`, { body: { gracePeriodSeconds: 60 } });
  const problem = assertProblem(res, 409, 'conflict');
  assert.equal(problem.secret, undefined);
  assert.ok(!res.body.includes('pcl_'));
  assert.deepEqual(await allKeys(h), before);
  // The revoked key stays revoked: the refused rotation gave it no new life.
  assert.equal((await h.get('/v1/keys', { key: key.secret })).statusCode, 401);
});

test('an unknown route is a 404 problem, with or without a key', async (t) => {
  const h = await startHarness(t);
  for (const [method, url] of [
    ['GET', '/v1/nope'],
    ['GET', '/v2/keys'],
    ['DELETE', '/v1/keys/key_x'],
    ['POST', '/v1/keys/key_x/explode'],
    ['GET', '/'],
  ] as const) {
    assertProblem(await h.request(method, url), 404, 'not-found');
    assertProblem(await h.request(method, url, { key: null }), 404, 'not-found');
  }
});
