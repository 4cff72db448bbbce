import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LIST_LIMIT_MAX } from '../../src/core/cursor.ts';
import { IDEMPOTENCY_KEY_MAX_LENGTH, IDEMPOTENCY_TTL_MS } from '../../src/http/plugins/idempotency.ts';
import { assertProblem } from '../harness/authSuite.ts';
import { startHarness } from '../harness/startHarness.ts';
import type { Harness } from '../harness/startHarness.ts';

const REPLAYED = 'idempotent-replayed';

async function keyIds(h: Harness): Promise<string[]> {
  const res = await h.get(`/v1/keys?limit=${LIST_LIMIT_MAX}`);
  assert.equal(res.statusCode, 200);
  return res.json<{ data: { id: string }[] }>().data.map((k) => k.id);
}

const withKey = (idempotencyKey: string) => ({ 'idempotency-key': idempotencyKey });

test('a repeat with the same key and body replays the first response without running again', async (t) => {
  const h = await startHarness(t);
  const target = await h.createKey(['keys:read']);
  const first = await h.post(`/v1/keys/${target.id}/revoke`, { headers: withKey('revoke-1') });
  assert.equal(first.statusCode, 200);
  assert.equal(first.headers[REPLAYED], undefined);

  // Revoking again would move updatedAt to the new time; a replay leaves it.
  h.clock.advance(5000);
  const again = await h.post(`/v1/keys/${target.id}/revoke`, { headers: withKey('revoke-1') });
  assert.equal(again.statusCode, 200);
  assert.equal(again.headers[REPLAYED], 'true');
  assert.equal(again.body, first.body);
  assert.match(String(again.headers['content-type']), /^application\/json/);
  const stored = (await h.get(`/v1/keys/${target.id}`)).json();
  assert.equal(stored.updatedAt, first.json().updatedAt);
  assert.equal(stored.revokedAt, first.json().revokedAt);

  // Without the header the request runs, so the replay above was the header's doing.
  const fresh = await h.post(`/v1/keys/${target.id}/revoke`);
  assert.equal(fresh.headers[REPLAYED], undefined);
  assert.notEqual(fresh.json().updatedAt, first.json().updatedAt);
});

test('a repeated key creation is a 409 naming the created key, never its secret, and creates one key', async (t) => {
  const h = await startHarness(t);
  const before = await keyIds(h);
  const body = { name: 'once', scopes: ['keys:read'] };
  const first = await h.post('/v1/keys', { body, headers: withKey('create-1') });
  assert.equal(first.statusCode, 201);
  const created = first.json<{ id: string; secret: string }>();

  for (let i = 0; i < 2; i++) {
    const again = await h.post('/v1/keys', { body, headers: withKey('create-1') });
    const problem = assertProblem(again, 409, 'idempotency-secret-not-replayed');
    assert.equal(problem.resourceId, created.id);
    assert.match(String(problem.detail), new RegExp(created.id));
    assert.ok(!again.body.includes(created.secret.slice(4)));
  }
  assert.deepEqual(await keyIds(h), [...before, created.id]);
});

test('a repeated rotation is a 409 naming the key, and rotates it once', async (t) => {
  const h = await startHarness(t);
  const key = await h.createKey(['keys:read']);
  const first = await h.post(`/v1/keys/${key.id}/rotate`, { headers: withKey('rotate-1') });
  assert.equal(first.statusCode, 200);
  const rotated = first.json<{ secret: string; prefix: string }>();

  const again = await h.post(`/v1/keys/${key.id}/rotate`, { headers: withKey('rotate-1') });
  const problem = assertProblem(again, 409, 'idempotency-secret-not-replayed');
  assert.equal(problem.resourceId, key.id);
  assert.ok(!again.body.includes('pcl_'));
  // A second rotation would have retired the first new secret at once.
  assert.equal((await h.get('/v1/keys', { key: rotated.secret })).statusCode, 200);
  assert.equal((await h.get(`/v1/keys/${key.id}`)).json().prefix, rotated.prefix);
});

test('the same key with a different body is a 422 idempotency-mismatch, and runs nothing', async (t) => {
  const h = await startHarness(t);
  const first = await h.post('/v1/keys', { body: { name: 'a', scopes: ['keys:read'] }, headers: withKey('mismatch') });
  assert.equal(first.statusCode, 201);
  const before = await keyIds(h);
  for (const body of [{ name: 'b', scopes: ['keys:read'] }, { name: 'a', scopes: ['keys:write'] }, { name: 'a', scopes: ['keys:read'], customer: 'c' }]) {
    assertProblem(await h.post('/v1/keys', { body, headers: withKey('mismatch') }), 422, 'idempotency-mismatch');
  }
  assert.deepEqual(await keyIds(h), before);

  const target = await h.createKey(['keys:read']);
  assert.equal((await h.post(`/v1/keys/${target.id}/rotate`, { body: { gracePeriodSeconds: 10 }, headers: withKey('grace') })).statusCode, 200);
  assertProblem(await h.post(`/v1/keys/${target.id}/rotate`, { body: { gracePeriodSeconds: 20 }, headers: withKey('grace') }), 422, 'idempotency-mismatch');
});

test('the same body with its fields in another order is the same request', async (t) => {
  const h = await startHarness(t);
  assert.equal((await h.post('/v1/keys', { body: { name: 'a', scopes: ['keys:read'], metadata: { x: 1, y: 2 } }, headers: withKey('order') })).statusCode, 201);
  const again = await h.post('/v1/keys', { body: { metadata: { y: 2, x: 1 }, scopes: ['keys:read'], name: 'a' }, headers: withKey('order') });
  assertProblem(again, 409, 'idempotency-secret-not-replayed');
});

test('concurrent identical requests run once: one succeeds, the other is refused as in flight or told of the first', async (t) => {
  const h = await startHarness(t);
  const before = await keyIds(h);
  const body = { name: 'race', scopes: ['keys:read'] };
  const results = await Promise.all([1, 2, 3].map(() => h.post('/v1/keys', { body, headers: withKey('race') })));
  const created = results.filter((r) => r.statusCode === 201);
  assert.equal(created.length, 1, results.map((r) => r.body).join('\n'));
  for (const res of results.filter((r) => r.statusCode !== 201)) {
    assert.equal(res.statusCode, 409, res.body);
    const code = res.json().code;
    assert.ok(code === 'idempotency-in-flight' || code === 'idempotency-secret-not-replayed', code);
    if (code === 'idempotency-in-flight') assert.ok(Number(res.headers['retry-after']) >= 1);
  }
  const after = await keyIds(h);
  assert.equal(after.length, before.length + 1);
  assert.equal(after.at(-1), created[0]!.json().id);
});

test('concurrent identical revocations run once: the other is refused as in flight or replayed', async (t) => {
  const h = await startHarness(t);
  const target = await h.createKey(['keys:read']);
  const results = await Promise.all([1, 2].map(() => h.post(`/v1/keys/${target.id}/revoke`, { headers: withKey('race') })));
  const ran = results.filter((r) => r.statusCode === 200 && r.headers[REPLAYED] === undefined);
  assert.equal(ran.length, 1, results.map((r) => `${r.statusCode} ${r.body}`).join('\n'));
  const other = results.find((r) => r !== ran[0])!;
  if (other.statusCode === 200) {
    assert.equal(other.headers[REPLAYED], 'true');
    assert.equal(other.body, ran[0]!.body);
  } else {
    assertProblem(other, 409, 'idempotency-in-flight');
  }
});

test('a record expires after 24 hours, and the request then runs again', async (t) => {
  const h = await startHarness(t);
  const body = { name: 'daily', scopes: ['keys:read'] };
  const before = await keyIds(h);
  const first = (await h.post('/v1/keys', { body, headers: withKey('daily') })).json<{ id: string }>();

  h.clock.advance(IDEMPOTENCY_TTL_MS - 1000);
  assertProblem(await h.post('/v1/keys', { body, headers: withKey('daily') }), 409, 'idempotency-secret-not-replayed');

  h.clock.advance(2000);
  const later = await h.post('/v1/keys', { body, headers: withKey('daily') });
  assert.equal(later.statusCode, 201, later.body);
  const second = later.json<{ id: string }>();
  assert.notEqual(second.id, first.id);
  assert.deepEqual(await keyIds(h), [...before, first.id, second.id]);
  // And the new outcome is the one remembered now.
  assertProblem(await h.post('/v1/keys', { body, headers: withKey('daily') }), 409, 'idempotency-secret-not-replayed');
});

test('records are scoped per API key: another key with the same Idempotency-Key is independent', async (t) => {
  const h = await startHarness(t);
  const writer = await h.createKey(['keys:write']);
  const body = { name: 'shared', scopes: ['keys:read'] };
  const before = await keyIds(h);
  const a = await h.post('/v1/keys', { body, headers: withKey('shared') });
  const b = await h.post('/v1/keys', { key: writer.secret, body, headers: withKey('shared') });
  assert.equal(a.statusCode, 201);
  assert.equal(b.statusCode, 201, b.body);
  assert.notEqual(a.json().id, b.json().id);
  assert.equal((await keyIds(h)).length, before.length + 2);
  // A different body under the other key is no mismatch either.
  assert.equal((await h.post('/v1/keys', { key: writer.secret, body: { name: 'other', scopes: ['keys:read'] }, headers: withKey('admin-only') })).statusCode, 201);
  assert.equal((await h.post('/v1/keys', { body: { name: 'mine', scopes: ['keys:read'] }, headers: withKey('admin-only') })).statusCode, 201);
});

test('records are scoped per path: the same Idempotency-Key on two resources runs both', async (t) => {
  const h = await startHarness(t);
  const one = await h.createKey(['keys:read']);
  const two = await h.createKey(['keys:read']);
  const a = await h.post(`/v1/keys/${one.id}/revoke`, { headers: withKey('per-path') });
  const b = await h.post(`/v1/keys/${two.id}/revoke`, { headers: withKey('per-path') });
  assert.equal(a.headers[REPLAYED], undefined);
  assert.equal(b.headers[REPLAYED], undefined);
  assert.equal(b.json().id, two.id);
  assert.equal(b.json().status, 'revoked');
});

test('a replay still needs a valid key: a revoked caller gets 401, not the stored response', async (t) => {
  const h = await startHarness(t);
  const writer = await h.createKey(['keys:write']);
  const target = await h.createKey(['keys:read']);
  assert.equal((await h.post(`/v1/keys/${target.id}/revoke`, { key: writer.secret, headers: withKey('then-revoked') })).statusCode, 200);
  await h.revokeKey(writer.id);
  assertProblem(await h.post(`/v1/keys/${target.id}/revoke`, { key: writer.secret, headers: withKey('then-revoked') }), 401, 'unauthorized');
});

test('an invalid Idempotency-Key is a 400 and runs nothing', async (t) => {
  const h = await startHarness(t);
  const before = await keyIds(h);
  const body = { name: 'x', scopes: ['keys:read'] };
  for (const value of ['k'.repeat(IDEMPOTENCY_KEY_MAX_LENGTH + 1), 'with space', 'tab\tinside', 'ünïcode']) {
    const res = await h.post('/v1/keys', { body, headers: { 'idempotency-key': value } });
    assertProblem(res, 400, 'validation-failed');
  }
  assert.deepEqual(await keyIds(h), before);
  assert.equal((await h.post('/v1/keys', { body, headers: withKey('k'.repeat(IDEMPOTENCY_KEY_MAX_LENGTH)) })).statusCode, 201);
});

test('a request refused by validation does not use up its Idempotency-Key', async (t) => {
  const h = await startHarness(t);
  assertProblem(await h.post('/v1/keys', { body: { name: 5, scopes: ['keys:read'] }, headers: withKey('retry-fixed') }), 400, 'validation-failed');
  const fixed = await h.post('/v1/keys', { body: { name: 'five', scopes: ['keys:read'] }, headers: withKey('retry-fixed') });
  assert.equal(fixed.statusCode, 201, fixed.body);
});
