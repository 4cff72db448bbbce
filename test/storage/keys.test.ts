import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import pg from 'pg';
import { ID_PREFIX, newId } from '../../src/core/ids.ts';
import { openStore } from '../../src/storage/open.ts';
import type { NewApiKey } from '../../src/storage/store.ts';
import { InvalidCursorError } from '../../src/storage/store.ts';
import { TEST_DATABASE_URL, TEST_ENGINE } from '../harness/engine.ts';
import { onCleanup } from '../harness/cleanup.ts';
import { openTestStore } from '../harness/store.ts';

function newKey(overrides: Partial<NewApiKey> = {}): NewApiKey {
  const id = newId(ID_PREFIX.key);
  return {
    id,
    name: 'k',
    customer: null,
    metadata: {},
    scopes: ['keys:read'],
    prefix: 'pcl_abcdefgh',
    secretHash: `hash-${id}`,
    createdBy: null,
    expiresAt: null,
    rateLimitPolicy: null,
    quota: null,
    now: new Date(),
    ...overrides,
  };
}

test(`[${TEST_ENGINE}] migrations apply once, also when two processes migrate at once`, async (t) => {
  const { store, config } = await openTestStore(t);
  assert.equal(await store.migrate(), 0);
  const others = [openStore(config), openStore(config)];
  onCleanup(t, () => Promise.all(others.map((s) => s.close())).then(() => undefined));
  const applied = await Promise.all(others.map((s) => s.migrate()));
  assert.deepEqual(applied, [0, 0]);
  assert.deepEqual(await store.check(), { reachable: true, migrated: true });
});

test(`[${TEST_ENGINE}] a key round-trips with its fields and is found by secret hash`, async (t) => {
  const { store } = await openTestStore(t);
  const expiresAt = new Date(Date.now() + 60_000);
  const k = newKey({ customer: 'cus_1', metadata: { nested: { a: [1, 2] } }, scopes: ['admin'], expiresAt });
  const created = await store.keys.create(k);
  assert.equal(created.id, k.id);
  assert.deepEqual(created.metadata, { nested: { a: [1, 2] } });
  assert.deepEqual(created.scopes, ['admin']);
  assert.equal(created.expiresAt?.getTime(), expiresAt.getTime());
  const found = await store.keys.findBySecretHash(k.secretHash);
  assert.equal(found?.key.id, k.id);
  assert.equal(found?.secretExpiresAt, null);
  assert.equal(await store.keys.findBySecretHash('nope'), null);
  assert.equal(await store.keys.get('key_missing'), null);
});

test(`[${TEST_ENGINE}] the same secret hash cannot belong to two keys`, async (t) => {
  const { store } = await openTestStore(t);
  await store.keys.create(newKey({ secretHash: 'same' }));
  await assert.rejects(store.keys.create(newKey({ secretHash: 'same' })));
  const page = await store.keys.list({ limit: 10, cursor: null });
  assert.equal(page.data.length, 1, 'the failed create left nothing behind');
});

test(`[${TEST_ENGINE}] bootstrap happens once per store, even when raced`, async (t) => {
  const { store, config } = await openTestStore(t);
  const other = openStore(config);
  onCleanup(t, () => other.close());
  const results = await Promise.all([store.keys.bootstrap(newKey(), { secret_check: 'a' }), other.keys.bootstrap(newKey(), { secret_check: 'b' })]);
  assert.equal(results.filter((r) => r !== null).length, 1);
  assert.equal((await store.keys.list({ limit: 10, cursor: null })).data.length, 1);
  assert.ok(['a', 'b'].includes((await store.meta.get('secret_check')) ?? ''));
});

test(`[${TEST_ENGINE}] rotation keeps the previous secret until the grace period ends`, async (t) => {
  const { store } = await openTestStore(t);
  const k = await store.keys.create(newKey());
  const now = new Date();
  const graceEnd = new Date(now.getTime() + 5000);
  const rotated = await store.keys.rotate({ id: k.id, prefix: 'pcl_newprefx', secretHash: 'new-hash', previousExpiresAt: graceEnd, now });
  assert.equal(rotated?.prefix, 'pcl_newprefx');
  assert.equal((await store.keys.findBySecretHash(`hash-${k.id}`))?.secretExpiresAt?.getTime(), graceEnd.getTime());
  assert.equal((await store.keys.findBySecretHash('new-hash'))?.secretExpiresAt, null);
  // A second rotation never extends the first secret's life.
  await store.keys.rotate({ id: k.id, prefix: 'pcl_third000', secretHash: 'third-hash', previousExpiresAt: new Date(now.getTime() + 60_000), now });
  assert.equal((await store.keys.findBySecretHash(`hash-${k.id}`))?.secretExpiresAt?.getTime(), graceEnd.getTime());
  assert.equal(await store.keys.rotate({ id: 'key_missing', prefix: 'p', secretHash: 'h', previousExpiresAt: now, now }), null);
});

test(`[${TEST_ENGINE}] list pages never repeat or skip, and reject foreign cursors`, async (t) => {
  const { store } = await openTestStore(t);
  const ids: string[] = [];
  for (let i = 0; i < 11; i++) ids.push((await store.keys.create(newKey())).id);
  const seen: string[] = [];
  let cursor: string | null = null;
  do {
    const page = await store.keys.list({ limit: 4, cursor });
    seen.push(...page.data.map((k) => k.id));
    cursor = page.nextCursor;
  } while (cursor);
  assert.deepEqual(seen, ids);
  for (const bad of ['garbage', Buffer.from('{"s":"x"}').toString('base64url'), Buffer.from('[]').toString('base64url')]) {
    await assert.rejects(store.keys.list({ limit: 4, cursor: bad }), InvalidCursorError);
  }
});

test(`[${TEST_ENGINE}] idempotency claims are exclusive, replayable, and taken over when stale or expired`, async (t) => {
  const { store } = await openTestStore(t);
  const scope = { keyId: 'key_a', idempotencyKey: 'k1', method: 'POST', path: '/v1/x' };
  const now = new Date();
  const past = new Date(now.getTime() - 1000);
  assert.equal(await store.idempotency.begin(scope, 'h1', now, past, past), null);
  const again = await store.idempotency.begin(scope, 'h1', now, past, past);
  assert.equal(again?.state, 'in-flight');
  await store.idempotency.complete(scope, { response: { statusCode: 200, headers: { 'content-type': 'application/json' }, body: '{"ok":true}' } });
  const done = await store.idempotency.begin(scope, 'h2', now, past, past);
  assert.deepEqual(done, { state: 'completed', requestHash: 'h1', response: { statusCode: 200, headers: { 'content-type': 'application/json' }, body: '{"ok":true}' } });
  // Expired: a claim made before `expiredBefore` is replaced.
  const later = new Date(now.getTime() + 10_000);
  assert.equal(await store.idempotency.begin(scope, 'h3', later, later, later), null);
  // Stale in-flight claims are taken over; fresh ones are not.
  const other = { ...scope, idempotencyKey: 'k2' };
  assert.equal(await store.idempotency.begin(other, 'h', now, past, past), null);
  assert.equal((await store.idempotency.begin(other, 'h', now, past, past))?.state, 'in-flight');
  assert.equal(await store.idempotency.begin(other, 'h', later, later, past), null);
  // Released claims run again; secret outcomes keep only the resource id.
  await store.idempotency.release(other);
  assert.equal(await store.idempotency.begin(other, 'h', now, past, past), null);
  await store.idempotency.complete(other, { resourceId: 'key_x' });
  assert.deepEqual(await store.idempotency.begin(other, 'h', now, past, past), { state: 'completed-secret', requestHash: 'h', resourceId: 'key_x' });
  assert.equal(await store.idempotency.deleteExpired(new Date(later.getTime() + 1)), 2);
});

test(`[${TEST_ENGINE}] concurrent idempotency claims: exactly one wins`, async (t) => {
  const { store } = await openTestStore(t);
  const scope = { keyId: 'key_a', idempotencyKey: 'race', method: 'POST', path: '/v1/x' };
  const now = new Date();
  const past = new Date(now.getTime() - 60_000);
  const results = await Promise.all(Array.from({ length: 8 }, () => store.idempotency.begin(scope, 'h', now, past, past)));
  assert.equal(results.filter((r) => r === null).length, 1);
});

if (TEST_ENGINE === 'postgres') {
  test('[postgres] a key whose transaction commits late, below the cursor, appears on the next page', async (t) => {
    const { store, config } = await openTestStore(t);
    const a = await store.keys.create(newKey());
    // An open transaction takes a seq now and commits after page 1 was read.
    const late = new pg.Client({ connectionString: TEST_DATABASE_URL, options: `-c search_path=${config.databaseSchema}` });
    await late.connect();
    t.after(() => late.end());
    await late.query('BEGIN');
    const lateId = newId(ID_PREFIX.key);
    await late.query(
      `INSERT INTO api_keys (id, name, metadata, scopes, prefix, created_at, updated_at) VALUES ($1, 'late', '{}', '{keys:read}', 'pcl_late0000', now(), now())`,
      [lateId],
    );
    const b = await store.keys.create(newKey());
    const c = await store.keys.create(newKey());
    const page1 = await store.keys.list({ limit: 2, cursor: null });
    assert.deepEqual(page1.data.map((k) => k.id), [a.id, b.id]);
    await late.query('COMMIT');
    const page2 = await store.keys.list({ limit: 2, cursor: page1.nextCursor });
    assert.deepEqual(page2.data.map((k) => k.id), [lateId, c.id]);
    const page3 = page2.nextCursor ? await store.keys.list({ limit: 2, cursor: page2.nextCursor }) : { data: [] };
    assert.deepEqual(page3.data, [], 'nothing is returned twice');
  });
}
