import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sign as octokitSign } from '@octokit/webhooks-methods';
import { startHarness } from '../harness/startHarness.ts';

interface EventDetail {
  status: string;
  jobs: { status: string; attempts: { attempt: number; outcome: string }[] }[];
}

test("a job whose worker stops answering is taken over once its lease runs out, and the first worker's late outcome is refused", async (t) => {
  let release: () => void = () => undefined;
  const released = new Promise<void>((r) => (release = r));
  let calls = 0;
  const steps = [
    {
      name: 'stuck-then-fine',
      // The first attempt hangs like a worker that lost its process (and ignores its timeout signal).
      run: async () => (++calls === 1 ? released : undefined),
    },
  ];
  const h = await startHarness(t, { steps, env: { PORTCULLIS_PROCESSING: JSON.stringify({ pollMs: 10, leaseMs: 60_000, stepTimeoutMs: 3_600_000 }) } });
  const src = (await h.post('/v1/sources', { body: { name: 'GitHub', type: 'github', secret: 'lease-secret' } })).json<{ url: string }>();
  const body = JSON.stringify({ action: 'opened' });
  const delivered = await h.post(src.url, { key: null, payload: body, headers: { 'content-type': 'application/json', 'x-github-event': 'issues', 'x-github-delivery': 'l-1', 'x-hub-signature-256': await octokitSign('lease-secret', body) } });
  const id = delivered.json<{ eventId: string }>().eventId;
  const get = async (): Promise<EventDetail> => (await h.get(`/v1/events/${id}`)).json<EventDetail>();

  const waitFor = async (done: () => Promise<boolean> | boolean): Promise<void> => {
    const deadline = Date.now() + 10_000;
    while (!(await done())) {
      if (Date.now() > deadline) throw new Error(`timed out; event is ${JSON.stringify(await get())}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  };
  await waitFor(() => calls === 1);
  // Inside the lease nobody else takes it.
  h.clock.advance(59_000);
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(calls, 1);
  assert.equal((await get()).jobs[0]!.status, 'running');

  h.clock.advance(2_000);
  await waitFor(async () => (await get()).status === 'processed');
  assert.equal(calls, 2);
  release();
  await waitFor(() => h.logText().includes('job lease lost'));
  const event = await get();
  assert.equal(event.status, 'processed');
  // Only the attempt that held the lease is recorded.
  assert.deepEqual(event.jobs[0]!.attempts.map((a) => [a.attempt, a.outcome]), [[2, 'done']]);
});
