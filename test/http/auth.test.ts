import assert from 'node:assert/strict';
import { test } from 'node:test';
import { generateApiKey } from '../../src/core/apiKeys.ts';
import { startHarness } from '../harness/startHarness.ts';

test('a key with a bad checksum is refused without a store lookup', async (t) => {
  const h = await startHarness(t);
  const good = generateApiKey();
  const bad = good.slice(0, -1) + (good.endsWith('0') ? '1' : '0');
  // With the store gone, anything that reached it would be a 503.
  await h.services.store.close();
  const res = await h.get('/v1/keys', { key: bad });
  assert.equal(res.statusCode, 401);
  assert.match(res.json().detail, /malformed/);
  assert.equal((await h.get('/v1/keys', { key: good })).statusCode, 503);
});

test('auth failures are counted by reason', async (t) => {
  const h = await startHarness(t);
  await h.get('/v1/keys', { key: null });
  await h.get('/v1/keys', { key: 'pcl_nope' });
  await h.get('/v1/keys', { key: generateApiKey() });
  const metrics = (await h.get('/metrics')).body;
  for (const reason of ['missing', 'malformed', 'unknown']) {
    assert.match(metrics, new RegExp(`portcullis_auth_failures_total\\{reason="${reason}"\\} 1`));
  }
});

test('a change made in another process reaches this one within a second', async (t) => {
  const h = await startHarness(t);
  const key = await h.createKey(['keys:read']);
  assert.equal((await h.get('/v1/keys', { key: key.secret })).statusCode, 200);
  // Revoke behind the app's back, as another process would.
  await h.services.store.keys.revoke(key.id, h.clock());
  assert.equal((await h.get('/v1/keys', { key: key.secret })).statusCode, 200, 'still cached');
  h.clock.advance(1000);
  assert.equal((await h.get('/v1/keys', { key: key.secret })).statusCode, 401);
});
