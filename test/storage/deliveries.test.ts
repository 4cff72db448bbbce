import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { DeliveryAttempt } from '../../src/storage/deliveryStore.ts';
import { TEST_ENGINE } from '../harness/engine.ts';
import { openTestStore } from '../harness/store.ts';

test(`[${TEST_ENGINE}] outcomes saved together: one the store refuses fails alone, the others are kept`, async (t) => {
  const { store } = await openTestStore(t);
  const now = new Date('2026-11-30T10:00:00Z');
  const endpoint = {
    id: 'ep_01jdx3m5a8q2v7k4r9t6w1y3za',
    url: 'https://hooks.example.com/',
    description: '',
    eventTypes: [],
    sourceIds: [],
    headers: {},
    rateLimitPerSecond: null,
    timeoutMs: 15_000,
    retrySchedule: null,
    enabled: true,
    metadata: {},
    secretSealed: 'sealed',
    now,
  };
  await store.endpoints.create(endpoint);
  const ids = ['dlv_01jdx3m5a8q2v7k4r9t6w1y3za', 'dlv_01jdx3m5a8q2v7k4r9t6w1y3zb', 'dlv_01jdx3m5a8q2v7k4r9t6w1y3zc'];
  await store.messages.create(
    { id: 'msg_01jdx3m5a8q2v7k4r9t6w1y3za', eventType: 'a.b', payload: Buffer.from('{}'), createdAt: now },
    ids.map((id, i) => ({ id, endpointId: endpoint.id, subjectKind: 'message' as const, subjectId: 'msg_01jdx3m5a8q2v7k4r9t6w1y3za', causeId: `c${i}`, eventType: 'a.b', nextAttemptAt: now })),
  );
  const claimed = await store.deliveries.claim({ limit: 10, leaseMs: 60_000, now, skipEndpoints: [] });
  assert.equal(claimed.length, 3);

  const poisoned = 1;
  const attempt = (responseBody: string): DeliveryAttempt => ({ attempt: 1, startedAt: now, finishedAt: now, statusCode: 200, latencyMs: 1, responseBody, error: null, outcome: 'succeeded' });
  // PostgreSQL text cannot hold U+0000; SQLite can. Saved in the same group commit either way.
  const results = await Promise.allSettled(claimed.map((d, i) => store.deliveries.finish(d, { kind: 'succeeded' }, attempt(i === poisoned ? 'a\u0000b' : 'fine'), now)));
  results.forEach((r, i) => {
    if (i !== poisoned) assert.deepEqual(r, { status: 'fulfilled', value: true }, `delivery ${i}`);
  });
  assert.equal(results[poisoned]!.status, TEST_ENGINE === 'postgres' ? 'rejected' : 'fulfilled');
  const statuses = await Promise.all(claimed.map(async (d) => (await store.deliveries.get(d.id))!.status));
  assert.deepEqual(statuses, ['succeeded', TEST_ENGINE === 'postgres' ? 'sending' : 'succeeded', 'succeeded']);
});
