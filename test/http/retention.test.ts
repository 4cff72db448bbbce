import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import { sign as octokitSign } from '@octokit/webhooks-methods';
import { ConfigError, loadConfig } from '../../src/config/load.ts';
import { queryRows } from '../harness/db.ts';
import { startHarness } from '../harness/startHarness.ts';
import type { Harness } from '../harness/startHarness.ts';

const SECRET = 'github-test-secret';
const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

interface EventDetail {
  status: string;
  body: string | null;
  bodyText: string | null;
  headers: Record<string, string>;
  jobs: { status: string; attempts: unknown[] }[];
}

async function setup(t: TestContext, retention: Record<string, number>, hold: Promise<void> = Promise.resolve()): Promise<{ h: Harness; deliver: (delivery: string, event?: string) => Promise<string> }> {
  const h = await startHarness(t, {
    // A `hold` event stays pending (its step waits) for as long as the test wants.
    steps: [{ name: 'hold', run: (event) => (event.type === 'github.hold' ? hold : Promise.resolve()) }],
    env: {
      PORTCULLIS_RETENTION: JSON.stringify({ sweepIntervalMs: 20, ...retention }),
      PORTCULLIS_PROCESSING: JSON.stringify({ pollMs: 10, leaseMs: 30 * DAY_MS, stepTimeoutMs: 600_000 }),
    },
  });
  const res = await h.post('/v1/sources', { body: { name: 'GitHub', slug: 'gh', type: 'github', secret: SECRET, dedupWindowSeconds: 3600 } });
  assert.equal(res.statusCode, 201, res.body);
  return {
    h,
    async deliver(delivery, event = 'push') {
      const body = JSON.stringify({ delivery });
      const answer = await h.post('/in/gh', { key: null, payload: body, headers: { 'content-type': 'application/json', 'x-github-event': event, 'x-github-delivery': delivery, 'x-hub-signature-256': await octokitSign(SECRET, body) } });
      assert.equal(answer.statusCode, 200, answer.body);
      return answer.json<{ eventId: string }>().eventId;
    },
  };
}

const get = async (h: Harness, id: string): Promise<EventDetail> => (await h.get(`/v1/events/${id}`)).json<EventDetail>();
const dedupRows = async (h: Harness): Promise<number> => Number((await queryRows<{ n: number | string }>(h, 'SELECT count(*) AS n FROM event_dedup'))[0]!.n);

async function eventually(what: string, check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const sweeps = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 150));

test('retention removes the bodies of old events that are no longer pending, in batches, and deletes expired dedup records', async (t) => {
  let release = (): void => undefined;
  const hold = new Promise<void>((resolve) => (release = resolve));
  const { h, deliver } = await setup(t, { bodyDays: 1, batchSize: 2 }, hold);
  const old = [await deliver('a'), await deliver('b'), await deliver('c')];
  const held = await deliver('h', 'hold');
  await eventually('processed', async () => (await Promise.all(old.map((id) => get(h, id)))).every((e) => e.status === 'processed'));

  h.clock.advance(12 * HOUR_MS);
  const recent = await deliver('d');
  await eventually('d processed', async () => (await get(h, recent)).status === 'processed');
  await sweeps();
  assert.notEqual((await get(h, old[0]!)).body, null, 'half a day old: kept');

  h.clock.advance(12 * HOUR_MS + 60_000);
  await eventually('old bodies removed', async () => (await Promise.all(old.map((id) => get(h, id)))).every((e) => e.body === null));
  const swept = await get(h, old[0]!);
  assert.equal(swept.bodyText, null);
  assert.equal(swept.status, 'processed');
  assert.equal(swept.headers['x-github-delivery'], 'a', 'headers are kept');
  assert.equal(swept.jobs[0]!.status, 'done', 'history is kept');
  assert.equal((await get(h, recent)).bodyText, JSON.stringify({ delivery: 'd' }), 'received 12 h ago: kept');
  const pending = await get(h, held);
  assert.equal(pending.status, 'pending');
  assert.equal(pending.bodyText, JSON.stringify({ delivery: 'h' }), 'still pending: kept, however old');

  // Every dedup window (1 h) has passed: the records are gone, and a redelivery is a new event.
  await eventually('dedup records deleted', async () => (await dedupRows(h)) === 0);
  const again = await deliver('a');
  assert.notEqual(again, old[0]);

  const metrics = (await h.get('/metrics')).body;
  assert.match(metrics, /^portcullis_retention_bodies_deleted_total 3$/m);
  assert.match(metrics, /^portcullis_retention_dedup_deleted_total 5$/m);

  // Once processed, the held event's body goes too.
  release();
  await eventually('held body removed', async () => (await get(h, held)).body === null);
});

test('bodyDays 0 keeps bodies forever; expired dedup records are still deleted', async (t) => {
  const { h, deliver } = await setup(t, { bodyDays: 0 });
  const id = await deliver('a');
  await eventually('processed', async () => (await get(h, id)).status === 'processed');
  h.clock.advance(3650 * DAY_MS);
  await eventually('dedup record deleted', async () => (await dedupRows(h)) === 0);
  await sweeps();
  assert.equal((await get(h, id)).bodyText, JSON.stringify({ delivery: 'a' }));
  assert.match((await h.get('/metrics')).body, /^portcullis_retention_bodies_deleted_total 0$/m);
});

test('retention settings are validated at startup, and default to 30 days', () => {
  assert.deepEqual(loadConfig({ env: {} }).retention, { bodyDays: 30, sweepIntervalMs: 600_000, batchSize: 500 });
  assert.throws(() => loadConfig({ env: { PORTCULLIS_RETENTION: JSON.stringify({ bodyDays: -1, batchSize: 0, sweepMs: 5 }) } }), (err) => {
    assert.ok(err instanceof ConfigError);
    const problems = err.problems.join('\n');
    assert.match(problems, /retention \(PORTCULLIS_RETENTION\): must be >= 0/);
    assert.match(problems, /retention \(PORTCULLIS_RETENTION\): must be >= 1/);
    assert.match(problems, /sweepMs: unknown setting/);
    return true;
  });
});
