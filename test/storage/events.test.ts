import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { NewEvent } from '../../src/storage/store.ts';
import { TEST_ENGINE } from '../harness/engine.ts';
import { openTestStore } from '../harness/store.ts';

test(`[${TEST_ENGINE}] deliveries committed together: one the store refuses fails alone, the others are stored`, async (t) => {
  const { store } = await openTestStore(t);
  const now = new Date('2026-11-30T10:00:00Z');
  const event = (n: number, type: string): NewEvent => ({
    id: `evt_01jdx3m5a8q2v7k4r9t6w1y3z${n}`,
    sourceId: 'src_01jdx3m5a8q2v7k4r9t6w1y3za',
    type,
    deliveryId: `d${n}`,
    dedupKey: `d${n}`,
    headers: {},
    body: Buffer.from('{}'),
    receivedAt: now,
    dedupUntil: new Date(now.getTime() + 86_400_000),
    jobs: [],
  });
  // PostgreSQL text cannot hold U+0000; SQLite can. The three share one group commit.
  const results = await Promise.allSettled([store.events.ingest(event(1, 'a.b')), store.events.ingest(event(2, 'a\u0000b')), store.events.ingest(event(3, 'a.b'))]);
  assert.deepEqual(
    results.map((r) => r.status),
    ['fulfilled', TEST_ENGINE === 'postgres' ? 'rejected' : 'fulfilled', 'fulfilled'],
  );
  const stored = await Promise.all([1, 2, 3].map(async (n) => (await store.events.get(`evt_01jdx3m5a8q2v7k4r9t6w1y3z${n}`)) !== null));
  assert.deepEqual(stored, [true, TEST_ENGINE !== 'postgres', true]);
});
