import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import { sign as octokitSign } from '@octokit/webhooks-methods';
import type { ProcessStep } from '../../src/queue/worker.ts';
import { assertProblem, runAuthSuite } from '../harness/authSuite.ts';
import { startHarness } from '../harness/startHarness.ts';
import type { Harness } from '../harness/startHarness.ts';

interface EventDetail {
  id: string;
  status: string;
  type: string;
  bodyText: string | null;
  body: string | null;
  headers: Record<string, string>;
  jobs: { status: string; attempts: { attempt: number; outcome: string; error: string | null }[] }[];
}

async function setup(t: TestContext, steps: ProcessStep[], processing: Record<string, number> = {}): Promise<{ h: Harness; deliver: (payload: object, delivery: string, event?: string) => Promise<string> }> {
  const h = await startHarness(t, { steps, env: { PORTCULLIS_PROCESSING: JSON.stringify({ pollMs: 10, backoffBaseMs: 1, backoffMaxMs: 1, ...processing }) } });
  const src = (await h.post('/v1/sources', { body: { name: 'GitHub', slug: 'gh', type: 'github', secret: 'github-test-secret' } })).json<{ url: string }>();
  return {
    h,
    async deliver(payload, delivery, event = 'pull_request') {
      const body = JSON.stringify(payload);
      const res = await h.post(src.url, { key: null, payload: body, headers: { 'content-type': 'application/json', 'x-github-event': event, 'x-github-delivery': delivery, 'x-hub-signature-256': await octokitSign('github-test-secret', body) } });
      assert.equal(res.statusCode, 200, res.body);
      return res.json<{ eventId: string }>().eventId;
    },
  };
}

/** Polls the event until `done` says so; moves the simulated clock on so retries fall due. */
async function until(h: Harness, id: string, done: (e: EventDetail) => boolean, timeoutMs = 10_000): Promise<EventDetail> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const event = (await h.get(`/v1/events/${id}`)).json<EventDetail>();
    if (done(event)) return event;
    if (Date.now() > deadline) throw new Error(`event ${id} stayed ${JSON.stringify(event.jobs)}`);
    h.clock.advance(10);
    await new Promise((r) => setTimeout(r, 15));
  }
}

runAuthSuite({ method: 'GET', url: '/v1/events', scope: 'events:read' });

test('a received event is processed by the steps, once, and its history shows the attempt', async (t) => {
  const seen: string[] = [];
  const { h, deliver } = await setup(t, [{ name: 'record', run: async (event) => void seen.push(`${event.id} ${event.type}`) }]);
  const id = await deliver({ action: 'opened', number: 7 }, 'd-1');
  const event = await until(h, id, (e) => e.status === 'processed');
  assert.deepEqual(seen, [`${id} github.pull_request.opened`]);
  assert.equal(event.jobs.length, 1);
  assert.deepEqual(event.jobs[0]!.attempts.map((a) => [a.attempt, a.outcome]), [[1, 'done']]);
  assert.equal(event.bodyText, JSON.stringify({ action: 'opened', number: 7 }));
  assert.equal(Buffer.from(event.body!, 'base64').toString(), event.bodyText);
  assert.equal(event.headers['x-github-delivery'], 'd-1');
  assert.equal(event.headers['x-hub-signature-256'] !== undefined, true);
});

test('a failing step is retried with backoff, then dead-lettered with its last error; a replay processes it again', async (t) => {
  let failing = true;
  const { h, deliver } = await setup(t, [{ name: 'flaky', run: async () => { if (failing) throw new Error('downstream said 500'); } }], { maxAttempts: 3 });
  const id = await deliver({ action: 'closed' }, 'd-2');
  const dead = await until(h, id, (e) => e.status === 'dead');
  assert.deepEqual(dead.jobs[0]!.attempts.map((a) => [a.attempt, a.outcome, a.error]), [
    [1, 'retry', 'downstream said 500'],
    [2, 'retry', 'downstream said 500'],
    [3, 'dead', 'downstream said 500'],
  ]);
  const listed = await h.get('/v1/events?status=dead');
  assert.deepEqual(listed.json<{ data: { id: string }[] }>().data.map((e) => e.id), [id]);
  const metrics = (await h.get('/metrics')).body;
  assert.match(metrics, /portcullis_jobs_finished_total\{outcome="dead"\} 1/);
  // Per source and type: every failed attempt, and the dead letter.
  assert.match(metrics, /^portcullis_webhooks_failed_total\{source="src_[0-9a-z]+",type="github\.pull_request\.closed"\} 3$/m);
  assert.match(metrics, /^portcullis_webhooks_dead_total\{source="src_[0-9a-z]+",type="github\.pull_request\.closed"\} 1$/m);
  assert.doesNotMatch(metrics, /^portcullis_webhooks_processed_total\{/m);

  failing = false;
  const replay = await h.post(`/v1/events/${id}/replay`);
  assert.equal(replay.statusCode, 202, replay.body);
  assert.equal(replay.json().eventId, id);
  const processed = await until(h, id, (e) => e.status === 'processed');
  assert.equal(processed.jobs.length, 2);
  assert.deepEqual(processed.jobs.map((j) => j.status), ['dead', 'done']);
  assert.match((await h.get('/metrics')).body, /^portcullis_webhooks_processed_total\{source="src_[0-9a-z]+",type="github\.pull_request\.closed"\} 1$/m);
  assert.equal((await h.get('/v1/events?status=dead')).json().data.length, 0);
});

test('a step that hangs is cut off by the step timeout and retried', async (t) => {
  let calls = 0;
  const { h, deliver } = await setup(
    t,
    [{ name: 'slow', run: (_e, signal) => (++calls === 1 ? new Promise<void>(() => void signal) : Promise.resolve()) }],
    { stepTimeoutMs: 50 },
  );
  const id = await deliver({ action: 'opened' }, 'd-3');
  const event = await until(h, id, (e) => e.status === 'processed');
  assert.deepEqual(event.jobs[0]!.attempts.map((a) => [a.outcome, a.error]), [
    ['retry', 'step slow timed out after 50 ms'],
    ['done', null],
  ]);
});

test('events are listed in arrival order, filtered by type prefix, source, status and time', async (t) => {
  const { h, deliver } = await setup(t, []);
  const a = await deliver({ action: 'opened' }, 'l-1');
  h.clock.advance(60_000);
  const b = await deliver({ ref: 'main' }, 'l-2', 'push');
  const c = await deliver({ action: 'closed' }, 'l-3');
  const ids = async (query: string): Promise<string[]> => (await h.get(`/v1/events?${query}`)).json<{ data: { id: string }[] }>().data.map((e) => e.id);
  assert.deepEqual(await ids(''), [a, b, c]);
  assert.deepEqual(await ids('type=github.pull_request.*'), [a, c]);
  assert.deepEqual(await ids('type=github.push'), [b]);
  assert.deepEqual(await ids('type=github.pull'), []);
  const src = (await h.get('/v1/sources')).json<{ data: { id: string }[] }>().data[0]!.id;
  assert.deepEqual(await ids(`source=${src}`), [a, b, c]);
  assert.deepEqual(await ids('source=src_01jdx3m5a8q2v7k4r9t6w1y3zb'), []);
  const middle = new Date(h.clock().getTime() - 30_000).toISOString();
  assert.deepEqual(await ids(`from=${encodeURIComponent(middle)}`), [b, c]);
  assert.deepEqual(await ids(`to=${encodeURIComponent(middle)}`), [a]);
  const first = await h.get('/v1/events?limit=2');
  const second = await h.get(`/v1/events?limit=2&cursor=${first.json().nextCursor}`);
  assert.deepEqual([...first.json<{ data: { id: string }[] }>().data, ...second.json<{ data: { id: string }[] }>().data].map((e) => e.id), [a, b, c]);
});

test('event requests are validated and unknown events are 404', async (t) => {
  const { h } = await setup(t, []);
  for (const query of ['status=lost', 'from=yesterday', 'type=a b', 'limit=0', 'colour=red', 'cursor=bm9wZQ']) {
    const res = await h.get(`/v1/events?${query}`);
    assert.equal(res.statusCode, 400, `${query}: ${res.body}`);
  }
  assertProblem(await h.get('/v1/events/evt_01jdx3m5a8q2v7k4r9t6w1y3zb'), 404, 'not-found');
  assertProblem(await h.post('/v1/events/evt_01jdx3m5a8q2v7k4r9t6w1y3zb/replay'), 404, 'not-found');
  assertProblem(await h.post('/v1/events/replay', { body: { status: 'lost' } }), 400, 'validation-failed');
  assertProblem(await h.post('/v1/events/replay', { payload: '{"status":', headers: { 'content-type': 'application/json' } }), 400, 'malformed-request');
  assertProblem(await h.post('/v1/events/replay', { payload: JSON.stringify({ type: `${'a'.repeat(2_000_000)}` }), headers: { 'content-type': 'application/json' } }), 413, 'payload-too-large');
  const reader = await h.createKey(['events:read']);
  assertProblem(await h.post('/v1/events/evt_01jdx3m5a8q2v7k4r9t6w1y3zb/replay', { key: reader.secret }), 403, 'scope-missing');
});

test('dead events can be replayed in bulk by filter; a filter is required', async (t) => {
  let failing = true;
  const { h, deliver } = await setup(t, [{ name: 'flaky', run: async () => { if (failing) throw new Error('boom'); } }], { maxAttempts: 1 });
  const ids = [await deliver({ action: 'opened' }, 'b-1'), await deliver({ action: 'closed' }, 'b-2'), await deliver({ ref: 'x' }, 'b-3', 'push')];
  for (const id of ids) await until(h, id, (e) => e.status === 'dead');
  failing = false;
  assertProblem(await h.post('/v1/events/replay', { body: {} }), 400, 'validation-failed');
  assertProblem(await h.post('/v1/events/replay', { body: { limit: 5 } }), 400, 'validation-failed');
  const res = await h.post('/v1/events/replay', { body: { status: 'dead', type: 'github.pull_request.*' } });
  assert.equal(res.statusCode, 202, res.body);
  assert.deepEqual(res.json(), { replayed: 2 });
  await until(h, ids[0]!, (e) => e.status === 'processed');
  await until(h, ids[1]!, (e) => e.status === 'processed');
  assert.equal((await h.get(`/v1/events/${ids[2]}`)).json().status, 'dead');
});

test('queue gauges show jobs by state and dead letters', async (t) => {
  const { h, deliver } = await setup(t, [{ name: 'fail', run: async () => { throw new Error('no'); } }], { maxAttempts: 1 });
  const id = await deliver({ action: 'opened' }, 'q-1');
  await until(h, id, (e) => e.status === 'dead');
  const metrics = (await h.get('/metrics')).body;
  assert.match(metrics, /^portcullis_queue_jobs\{state="dead"\} 1$/m);
  assert.match(metrics, /^portcullis_queue_jobs\{state="ready"\} 0$/m);
  assert.match(metrics, /^portcullis_queue_oldest_due_seconds 0$/m);
});
