import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startHarness } from '../harness/startHarness.ts';

const ID = /^key_[0-9a-hjkmnp-tv-z]{26}$/;
const KEY = /^pcl_[0-9A-Za-z]{36}$/;

test('a created key is returned once with its secret, then only by prefix', async (t) => {
  const h = await startHarness(t);
  const res = await h.post('/v1/keys', { body: { name: 'acme', customer: 'cus_1', metadata: { plan: 'pro' }, scopes: ['keys:read'] } });
  assert.equal(res.statusCode, 201);
  const created = res.json();
  assert.match(created.id, ID);
  assert.match(created.secret, KEY);
  assert.equal(created.prefix, created.secret.slice(0, 12));
  assert.equal(res.headers.location, `/v1/keys/${created.id}`);
  assert.deepEqual(created.scopes, ['keys:read']);
  assert.equal(created.customer, 'cus_1');
  assert.deepEqual(created.metadata, { plan: 'pro' });
  assert.equal(created.status, 'active');
  assert.equal(new Date(created.createdAt).toISOString(), created.createdAt);

  const got = (await h.get(`/v1/keys/${created.id}`)).json();
  assert.equal(got.secret, undefined);
  assert.equal(got.prefix, created.prefix);
  assert.ok(!JSON.stringify((await h.get('/v1/keys')).json()).includes(created.secret));
});

test('a created key authenticates with exactly its scopes', async (t) => {
  const h = await startHarness(t);
  const key = await h.createKey(['keys:read']);
  assert.equal((await h.get('/v1/keys', { key: key.secret })).statusCode, 200);
  const denied = await h.post('/v1/keys', { key: key.secret, body: { name: 'x', scopes: ['keys:read'] } });
  assert.equal(denied.statusCode, 403);
  assert.equal(denied.json().scope, 'keys:write');
});

test('keys:write implies keys:read, and admin implies every scope', async (t) => {
  const h = await startHarness(t);
  const writer = await h.createKey(['keys:write']);
  assert.equal((await h.get('/v1/keys', { key: writer.secret })).statusCode, 200);
  assert.equal((await h.get('/metrics')).statusCode, 200);
});

test('lists page through every key in creation order with an opaque cursor', async (t) => {
  const h = await startHarness(t);
  const ids = [];
  for (let i = 0; i < 7; i++) ids.push((await h.createKey(['keys:read'])).id);
  const seen: string[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const res = await h.get(`/v1/keys?limit=3${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    assert.equal(res.statusCode, 200);
    const page = res.json();
    assert.ok(page.data.length <= 3);
    seen.push(...page.data.map((k: { id: string }) => k.id));
    cursor = page.nextCursor;
    pages++;
  } while (cursor);
  assert.equal(pages, 3);
  assert.deepEqual(seen.slice(1), ids); // the admin key comes first
  const first = (await h.get('/v1/keys')).json();
  assert.equal(first.data.length, 8);
  assert.equal(first.nextCursor, null);
});

test('update changes name, customer, metadata, scopes and expiry', async (t) => {
  const h = await startHarness(t);
  const key = await h.createKey(['keys:read']);
  const expiresAt = new Date(h.clock().getTime() + 3600_000).toISOString();
  const res = await h.patch(`/v1/keys/${key.id}`, { body: { name: 'renamed', customer: 'cus_9', metadata: { a: 1 }, scopes: ['keys:write', 'keys:read'], expiresAt } });
  assert.equal(res.statusCode, 200);
  const updated = res.json();
  assert.equal(updated.name, 'renamed');
  assert.equal(updated.customer, 'cus_9');
  assert.deepEqual(updated.metadata, { a: 1 });
  assert.deepEqual(updated.scopes, ['keys:read', 'keys:write']);
  assert.equal(updated.expiresAt, expiresAt);
  // The new scope applies on the next request.
  assert.equal((await h.post('/v1/keys', { key: key.secret, body: { name: 'child', scopes: ['keys:read'] } })).statusCode, 201);
  const cleared = (await h.patch(`/v1/keys/${key.id}`, { body: { customer: null, expiresAt: null } })).json();
  assert.equal(cleared.customer, null);
  assert.equal(cleared.expiresAt, null);
});

test('revocation takes effect on the very next request', async (t) => {
  const h = await startHarness(t);
  const key = await h.createKey(['keys:read']);
  assert.equal((await h.get('/v1/keys', { key: key.secret })).statusCode, 200);
  const res = await h.post(`/v1/keys/${key.id}/revoke`);
  assert.equal(res.statusCode, 200);
  assert.equal(res.json().status, 'revoked');
  const refused = await h.get('/v1/keys', { key: key.secret });
  assert.equal(refused.statusCode, 401);
  assert.match(refused.json().detail, /revoked/);
  // Revoking again changes nothing.
  const again = (await h.post(`/v1/keys/${key.id}/revoke`)).json();
  assert.equal(again.revokedAt, res.json().revokedAt);
});

test('an expired key is refused and listed as expired', async (t) => {
  const h = await startHarness(t);
  const key = await h.createKey(['keys:read'], { expiresAt: new Date(h.clock().getTime() + 1000).toISOString() });
  assert.equal((await h.get('/v1/keys', { key: key.secret })).statusCode, 200);
  h.clock.advance(1000);
  assert.equal((await h.get('/v1/keys', { key: key.secret })).statusCode, 401);
  assert.equal((await h.get(`/v1/keys/${key.id}`)).json().status, 'expired');
});

test('rotation issues a new secret; the old one works through the grace period, then stops', async (t) => {
  const h = await startHarness(t);
  const key = await h.createKey(['keys:read']);
  const res = await h.post(`/v1/keys/${key.id}/rotate`, { body: { gracePeriodSeconds: 60 } });
  assert.equal(res.statusCode, 200);
  const rotated = res.json();
  assert.equal(rotated.id, key.id);
  assert.match(rotated.secret, KEY);
  assert.notEqual(rotated.secret, key.secret);
  assert.equal(rotated.prefix, rotated.secret.slice(0, 12));
  assert.equal(rotated.previousSecretExpiresAt, new Date(h.clock().getTime() + 60_000).toISOString());
  assert.equal((await h.get('/v1/keys', { key: key.secret })).statusCode, 200);
  assert.equal((await h.get('/v1/keys', { key: rotated.secret })).statusCode, 200);
  h.clock.advance(60_000);
  const old = await h.get('/v1/keys', { key: key.secret });
  assert.equal(old.statusCode, 401);
  assert.match(old.json().detail, /rotated/);
  assert.equal((await h.get('/v1/keys', { key: rotated.secret })).statusCode, 200);
});

test('rotation without a grace period stops the old secret at once', async (t) => {
  const h = await startHarness(t);
  const key = await h.createKey(['keys:read']);
  const rotated = (await h.post(`/v1/keys/${key.id}/rotate`)).json();
  assert.equal((await h.get('/v1/keys', { key: key.secret })).statusCode, 401);
  assert.equal((await h.get('/v1/keys', { key: rotated.secret })).statusCode, 200);
});

test('every response carries a request id', async (t) => {
  const h = await startHarness(t);
  const res = await h.get('/v1/keys');
  assert.match(String(res.headers['x-request-id']), /^req_[0-9a-z]{26}$/);
});
