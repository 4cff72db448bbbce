import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import { sign as octokitSign } from '@octokit/webhooks-methods';
import pg from 'pg';
import { assertProblem, runAuthSuite } from '../harness/authSuite.ts';
import { TEST_DATABASE_URL, TEST_ENGINE } from '../harness/engine.ts';
import { startHarness } from '../harness/startHarness.ts';
import type { Harness } from '../harness/startHarness.ts';

interface Leased {
  receipt: string;
  deliveries: number;
  visibleAt: string;
  event: { id: string; type: string; sourceId: string; bodyText: string | null; body: string | null; headers: Record<string, string> };
}
interface Group {
  id: string;
  name: string;
  pending: number;
  leased: number;
}

const SECRET = 'github-test-secret';

async function setup(t: TestContext): Promise<{ h: Harness; sourceId: string; deliver: (delivery: string, event?: string, payload?: object, url?: string) => Promise<string> }> {
  const h = await startHarness(t);
  const src = (await h.post('/v1/sources', { body: { name: 'GitHub', slug: 'gh', type: 'github', secret: SECRET } })).json<{ id: string; url: string }>();
  return {
    h,
    sourceId: src.id,
    async deliver(delivery, event = 'push', payload = { delivery }, url = src.url) {
      const body = JSON.stringify(payload);
      const res = await h.post(url, { key: null, payload: body, headers: { 'content-type': 'application/json', 'x-github-event': event, 'x-github-delivery': delivery, 'x-hub-signature-256': await octokitSign(SECRET, body) } });
      assert.equal(res.statusCode, 200, res.body);
      return res.json<{ eventId: string }>().eventId;
    },
  };
}

async function createGroup(h: Harness, body: Record<string, unknown>): Promise<{ id: string; name: string }> {
  const res = await h.post('/v1/consumer-groups', { body });
  assert.equal(res.statusCode, 201, res.body);
  return res.json();
}

async function lease(h: Harness, group: string, query = ''): Promise<Leased[]> {
  const res = await h.post(`/v1/consumer-groups/${group}/lease${query}`);
  assert.equal(res.statusCode, 200, res.body);
  return res.json<{ data: Leased[] }>().data;
}

/**
 * Leases until `count` events came (long polls, so an event not yet readable is
 * waited for: on PostgreSQL a transaction still open anywhere in the cluster
 * holds newer events back for a moment).
 */
async function leaseAll(h: Harness, group: string, count: number, query = ''): Promise<Leased[]> {
  const got: Leased[] = [];
  const deadline = Date.now() + 10_000;
  while (got.length < count && Date.now() < deadline) got.push(...(await lease(h, group, `?wait=5&max=${count - got.length}${query}`)));
  return got;
}

async function settle(h: Harness, group: string, action: 'ack' | 'nack', receipts: string[], extra: object = {}): Promise<{ settled: string[]; stale: string[] }> {
  const res = await h.post(`/v1/consumer-groups/${group}/${action}`, { body: { receipts, ...extra } });
  assert.equal(res.statusCode, 200, res.body);
  return res.json();
}

runAuthSuite({ method: 'GET', url: '/v1/consumer-groups', scope: 'consumer-groups:read' });
runAuthSuite({
  method: 'POST',
  url: async (h) => `/v1/consumer-groups/${(await h.post('/v1/consumer-groups', { body: { name: 'auth' } })).json<{ id: string }>().id}/lease`,
  scope: 'consumer-groups:write',
});

test('a group started now hands out later events oldest first, each once, with their raw bodies; ack forgets them', async (t) => {
  const { h, sourceId, deliver } = await setup(t);
  await deliver('before');
  h.clock.advance(1_000);
  const group = await createGroup(h, { name: 'billing' });
  const ids = [await deliver('a'), await deliver('b'), await deliver('c')];

  const first = await leaseAll(h, 'billing', 2);
  assert.deepEqual(first.map((l) => l.event.id), ids.slice(0, 2));
  assert.equal(first[0]!.event.bodyText, JSON.stringify({ delivery: 'a' }));
  assert.equal(first[0]!.event.sourceId, sourceId);
  assert.equal(first[0]!.event.headers['x-github-delivery'], 'a');
  assert.equal(first[0]!.deliveries, 1);
  const second = await leaseAll(h, group.id, 1);
  assert.deepEqual(second.map((l) => l.event.id), [ids[2]]);
  assert.deepEqual(await lease(h, 'billing'), []);

  const acked = await settle(h, 'billing', 'ack', first.map((l) => l.receipt));
  assert.deepEqual(acked, { settled: first.map((l) => l.receipt), stale: [] });
  const detail = (await h.get('/v1/consumer-groups/billing')).json<Group>();
  assert.equal(detail.id, group.id);
  assert.deepEqual([detail.pending, detail.leased], [1, 1]);
  assert.match((await h.get('/metrics')).body, /portcullis_consumer_group_events_total\{group="billing",action="acked"\} 2/);
});

test('an event not acknowledged within the visibility timeout is handed out again with a new receipt; the old one is stale', async (t) => {
  const { h, deliver } = await setup(t);
  await createGroup(h, { name: 'slow', visibilityTimeoutSeconds: 30 });
  const id = await deliver('x');
  const [first] = await leaseAll(h, 'slow', 1);
  assert.equal(first!.event.id, id);
  h.clock.advance(29_000);
  assert.deepEqual(await lease(h, 'slow'), []);
  h.clock.advance(2_000);
  const [again] = await lease(h, 'slow');
  assert.equal(again!.event.id, id);
  assert.equal(again!.deliveries, 2);
  assert.notEqual(again!.receipt, first!.receipt);

  assert.deepEqual(await settle(h, 'slow', 'ack', [first!.receipt]), { settled: [], stale: [first!.receipt] });
  assert.deepEqual(await settle(h, 'slow', 'ack', [again!.receipt]), { settled: [again!.receipt], stale: [] });
  h.clock.advance(60_000);
  assert.deepEqual(await lease(h, 'slow'), []);
  // A per-lease visibility timeout overrides the group's.
  await deliver('y');
  const [short] = await leaseAll(h, 'slow', 1, '&visibilityTimeout=5');
  h.clock.advance(5_000);
  assert.equal((await lease(h, 'slow'))[0]!.event.id, short!.event.id);
});

test('nack gives an event back at once, or after its delay', async (t) => {
  const { h, deliver } = await setup(t);
  await createGroup(h, { name: 'retry' });
  const id = await deliver('n');
  const [first] = await leaseAll(h, 'retry', 1);
  assert.deepEqual(await settle(h, 'retry', 'nack', [first!.receipt]), { settled: [first!.receipt], stale: [] });
  const [again] = await lease(h, 'retry');
  assert.equal(again!.event.id, id);
  assert.equal(again!.deliveries, 2);
  await settle(h, 'retry', 'nack', [again!.receipt], { delaySeconds: 60 });
  assert.deepEqual(await lease(h, 'retry'), []);
  h.clock.advance(60_000);
  assert.equal((await lease(h, 'retry'))[0]!.deliveries, 3);
});

test('groups filter by source and type, start from the earliest event or a time, and each group sees every event', async (t) => {
  const { h, sourceId, deliver } = await setup(t);
  const other = (await h.post('/v1/sources', { body: { name: 'Other', slug: 'other', type: 'github', secret: SECRET } })).json<{ url: string }>();
  const early = await deliver('e1', 'pull_request', { action: 'opened' });
  h.clock.advance(60_000);
  const cut = h.clock().toISOString();
  const push = await deliver('e2', 'push');
  const pr = await deliver('e3', 'pull_request', { action: 'closed' });
  const elsewhere = await deliver('e4', 'pull_request', { action: 'closed' }, other.url);

  await createGroup(h, { name: 'all', start: 'earliest' });
  await createGroup(h, { name: 'prs', start: 'earliest', types: ['github.pull_request.*'], source: sourceId });
  await createGroup(h, { name: 'since', start: cut });
  assert.deepEqual((await leaseAll(h, 'all', 4)).map((l) => l.event.id), [early, push, pr, elsewhere]);
  assert.deepEqual((await leaseAll(h, 'prs', 2)).map((l) => l.event.id), [early, pr]);
  assert.deepEqual((await leaseAll(h, 'since', 3)).map((l) => l.event.id), [push, pr, elsewhere]);
  for (const group of ['all', 'prs', 'since']) assert.deepEqual(await lease(h, group), []);
  const listed = (await h.get('/v1/consumer-groups')).json<{ data: { name: string }[] }>();
  assert.deepEqual(listed.data.map((g) => g.name), ['all', 'prs', 'since']);
});

test('a long poll answers as soon as an event arrives, and empty when the wait runs out', async (t) => {
  const { h, deliver } = await setup(t);
  await createGroup(h, { name: 'poll' });
  const started = performance.now();
  assert.deepEqual(await lease(h, 'poll', '?wait=0.3'), []);
  assert.ok(performance.now() - started >= 300);

  const waiting = lease(h, 'poll', '?wait=20');
  await new Promise((r) => setTimeout(r, 100));
  const id = await deliver('late');
  const t0 = performance.now();
  const got = await waiting;
  assert.deepEqual(got.map((l) => l.event.id), [id]);
  assert.ok(performance.now() - t0 < 5_000);
});

test('concurrent consumers of one group never get the same event, and with concurrent writers none is skipped', async (t) => {
  const { h, deliver } = await setup(t);
  await createGroup(h, { name: 'workers' });
  const total = 120;
  const delivered: string[] = [];
  const consumed: string[] = [];
  let writing = true;
  const writers = Array.from({ length: 6 }, async (_, w) => {
    for (let i = w; i < total; i += 6) delivered.push(await deliver(`w-${i}`));
  });
  const consumers = Array.from({ length: 3 }, async () => {
    for (;;) {
      const batch = await lease(h, 'workers', '?max=7');
      consumed.push(...batch.map((l) => l.event.id));
      if (batch.length > 0) await settle(h, 'workers', 'ack', batch.map((l) => l.receipt));
      else if (!writing) return;
      else await new Promise((r) => setTimeout(r, 5));
    }
  });
  await Promise.all(writers);
  writing = false;
  await Promise.all(consumers);
  // Whatever the last empty lease could not read yet (a commit landing just then) is still there for the next one.
  if (consumed.length < total) consumed.push(...(await leaseAll(h, 'workers', total - consumed.length)).map((l) => l.event.id));
  assert.equal(new Set(consumed).size, consumed.length, 'an event was handed out twice');
  assert.deepEqual([...consumed].sort(), [...delivered].sort());
});

test('on PostgreSQL a group waits for a transaction that took an earlier sequence number and commits late', { skip: TEST_ENGINE !== 'postgres' && 'SQLite serialises writers: commit order is sequence order' }, async (t) => {
  const { h, sourceId, deliver } = await setup(t);
  await createGroup(h, { name: 'ordered' });
  // A writer that has taken its sequence number and transaction id, and not committed yet.
  const slow = new pg.Client({ connectionString: TEST_DATABASE_URL, options: `-c search_path=${h.config.databaseSchema}` });
  await slow.connect();
  t.after(() => slow.end());
  await slow.query('BEGIN');
  await slow.query(`INSERT INTO events (id, source_id, type, delivery_id, dedup_key, headers, body, received_at) VALUES ('evt_slow', $1, 'push', 'slow', 'slow', '{}', 'x', now())`, [sourceId]);
  const fast = await deliver('fast');
  assert.deepEqual(await lease(h, 'ordered'), [], 'handed out an event ahead of an uncommitted earlier one');
  await slow.query('COMMIT');
  assert.deepEqual((await leaseAll(h, 'ordered', 2)).map((l) => l.event.id), ['evt_slow', fast]);
});

test('consumer-group errors are problems and write nothing', async (t) => {
  const { h } = await setup(t);
  const json = { 'content-type': 'application/json' };
  assertProblem(await h.post('/v1/consumer-groups', { payload: '{"name":', headers: json }), 400, 'malformed-request');
  assertProblem(await h.post('/v1/consumer-groups', { body: { name: 42 } }), 400, 'validation-failed');
  assertProblem(await h.post('/v1/consumer-groups', { body: { name: 'Upper Case' } }), 400, 'validation-failed');
  assertProblem(await h.post('/v1/consumer-groups', { body: { name: 'cgr_fake' } }), 400, 'validation-failed');
  assertProblem(await h.post('/v1/consumer-groups', { body: { name: 'g', start: 'yesterday' } }), 400, 'validation-failed');
  assertProblem(await h.post('/v1/consumer-groups', { body: { name: 'g', start: '2026-13-45T99:00:00Z' } }), 400, 'validation-failed');
  assertProblem(await h.post('/v1/consumer-groups', { body: { name: 'g', types: ['bad type'] } }), 400, 'validation-failed');
  assertProblem(await h.post('/v1/consumer-groups', { body: { name: 'g', visibilityTimeoutSeconds: 0 } }), 400, 'validation-failed');
  assertProblem(await h.post('/v1/consumer-groups', { body: { name: 'g', source: 'src_missing' } }), 400, 'validation-failed');
  assertProblem(await h.post('/v1/consumer-groups', { payload: JSON.stringify({ name: 'g', types: ['x'.repeat(2_000_000)] }), headers: json }), 413, 'payload-too-large');
  assert.deepEqual((await h.get('/v1/consumer-groups')).json<{ data: unknown[] }>().data, []);

  await createGroup(h, { name: 'g' });
  assertProblem(await h.post('/v1/consumer-groups', { body: { name: 'g' } }), 409, 'conflict');
  for (const [method, path, body] of [
    ['GET', '/v1/consumer-groups/nope', undefined],
    ['DELETE', '/v1/consumer-groups/nope', undefined],
    ['POST', '/v1/consumer-groups/nope/lease', undefined],
    ['POST', '/v1/consumer-groups/nope/ack', { receipts: ['evt_x.abc'] }],
    ['POST', '/v1/consumer-groups/nope/nack', { receipts: ['evt_x.abc'] }],
  ] as const) {
    assertProblem(await h.request(method, path, body === undefined ? {} : { body }), 404, 'not-found');
  }
  assertProblem(await h.post('/v1/consumer-groups/g/lease?max=0'), 400, 'validation-failed');
  assertProblem(await h.post('/v1/consumer-groups/g/lease?max=101'), 400, 'validation-failed');
  assertProblem(await h.post('/v1/consumer-groups/g/lease?wait=61'), 400, 'validation-failed');
  assertProblem(await h.post('/v1/consumer-groups/g/lease?wait=soon'), 400, 'validation-failed');
  assertProblem(await h.post('/v1/consumer-groups/g/ack', { body: { receipts: [] } }), 400, 'validation-failed');
  assertProblem(await h.post('/v1/consumer-groups/g/ack', { body: { receipts: ['no-dot'] } }), 400, 'validation-failed');
  assertProblem(await h.post('/v1/consumer-groups/g/ack', { body: { receipts: 'evt_x.abc' } }), 400, 'validation-failed');
  assertProblem(await h.post('/v1/consumer-groups/g/nack', { body: { receipts: ['evt_x.abc'], delaySeconds: -1 } }), 400, 'validation-failed');
  assertProblem(await h.post('/v1/consumer-groups/g/ack', { payload: '{', headers: json }), 400, 'malformed-request');
  // A receipt for an event the group never handed out is stale, not an error.
  assert.deepEqual(await settle(h, 'g', 'ack', ['evt_x.abc']), { settled: [], stale: ['evt_x.abc'] });

  const readOnly = await h.createKey(['consumer-groups:read']);
  assertProblem(await h.post('/v1/consumer-groups/g/lease', { key: readOnly.secret }), 403, 'scope-missing');
  assertProblem(await h.post('/v1/consumer-groups', { key: readOnly.secret, body: { name: 'h' } }), 403, 'scope-missing');
  assert.equal((await h.request('DELETE', '/v1/consumer-groups/g')).statusCode, 204);
  assertProblem(await h.get('/v1/consumer-groups/g'), 404, 'not-found');
});
