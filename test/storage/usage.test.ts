import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { UsageDelta } from '../../src/storage/store.ts';
import { InvalidCursorError } from '../../src/storage/store.ts';
import { TEST_ENGINE } from '../harness/engine.ts';
import { openTestStore } from '../harness/store.ts';

const delta = (keyId: string, day: string, route: string, requests: number, units: number): UsageDelta => ({ keyId, day, route, requests, units });

test(`[${TEST_ENGINE}] a usage batch is added once: a retry with the same id counts nothing`, async (t) => {
  const { store } = await openTestStore(t);
  const batch = [delta('key_a', '2026-11-01', 'GET /v1/keys', 3, 3), delta('key_a', '2026-11-01', 'POST /v1/keys', 1, 5)];
  assert.equal(await store.usage.record('batch-1', batch, new Date()), true);
  assert.equal(await store.usage.record('batch-1', batch, new Date()), false);
  assert.equal(await store.usage.record('batch-2', [delta('key_a', '2026-11-02', 'GET /v1/keys', 2, 2)], new Date()), true);
  assert.equal(await store.usage.units('key_a', '2026-11-01', '2026-11-30'), 10);
  assert.equal(await store.usage.units('key_a', '2026-11-02', '2026-11-30'), 2);
  assert.equal(await store.usage.units('key_b', '2026-11-01', '2026-11-30'), 0);
});

test(`[${TEST_ENGINE}] concurrent batches on the same counters add up exactly`, async (t) => {
  const { store } = await openTestStore(t);
  await Promise.all(
    Array.from({ length: 20 }, (_, i) =>
      store.usage.record(`b${i}`, [delta('key_a', '2026-11-01', 'GET /v1/keys', 1, 2), delta('key_b', '2026-11-01', 'GET /v1/keys', 1, 1)], new Date()),
    ),
  );
  const page = await store.usage.query({ keyId: null, route: null, fromDay: '2026-11-01', toDay: '2026-11-01', granularity: 'day', limit: 10, cursor: null });
  assert.deepEqual(page.data, [
    { period: '2026-11-01', keyId: 'key_a', route: 'GET /v1/keys', requests: 20, units: 40 },
    { period: '2026-11-01', keyId: 'key_b', route: 'GET /v1/keys', requests: 20, units: 20 },
  ]);
});

test(`[${TEST_ENGINE}] usage by day or month, filtered, in pages that never repeat or skip`, async (t) => {
  const { store } = await openTestStore(t);
  await store.usage.record(
    'b',
    [
      delta('key_a', '2026-10-31', 'GET /v1/keys', 1, 1),
      delta('key_a', '2026-11-01', 'GET /v1/keys', 2, 2),
      delta('key_a', '2026-11-02', 'GET /v1/keys', 3, 3),
      delta('key_a', '2026-11-02', 'POST /v1/keys', 1, 5),
      delta('key_b', '2026-11-02', 'GET /v1/keys', 4, 4),
    ],
    new Date(),
  );
  const query = { keyId: null, route: null, fromDay: '2026-10-01', toDay: '2026-11-30', granularity: 'month' as const, limit: 50, cursor: null };
  assert.deepEqual((await store.usage.query(query)).data, [
    { period: '2026-10', keyId: 'key_a', route: 'GET /v1/keys', requests: 1, units: 1 },
    { period: '2026-11', keyId: 'key_a', route: 'GET /v1/keys', requests: 5, units: 5 },
    { period: '2026-11', keyId: 'key_a', route: 'POST /v1/keys', requests: 1, units: 5 },
    { period: '2026-11', keyId: 'key_b', route: 'GET /v1/keys', requests: 4, units: 4 },
  ]);
  assert.deepEqual(
    (await store.usage.query({ ...query, keyId: 'key_a', route: 'GET /v1/keys', granularity: 'day', fromDay: '2026-11-01' })).data.map((r) => [r.period, r.units]),
    [
      ['2026-11-01', 2],
      ['2026-11-02', 3],
    ],
  );

  const seen: string[] = [];
  let cursor: string | null = null;
  do {
    const page = await store.usage.query({ ...query, granularity: 'day', limit: 2, cursor });
    seen.push(...page.data.map((r) => `${r.period} ${r.keyId} ${r.route}`));
    cursor = page.nextCursor;
  } while (cursor);
  assert.equal(seen.length, 5);
  assert.equal(new Set(seen).size, 5);
  await assert.rejects(store.usage.query({ ...query, cursor: 'bm90IGEgY3Vyc29y' }), InvalidCursorError);
});

test(`[${TEST_ENGINE}] old batch ids are forgotten`, async (t) => {
  const { store } = await openTestStore(t);
  await store.usage.record('old', [], new Date('2026-01-01T00:00:00Z'));
  await store.usage.record('new', [], new Date('2026-03-01T00:00:00Z'));
  assert.equal(await store.usage.deleteBatchesBefore(new Date('2026-02-01T00:00:00Z')), 1);
  assert.equal(await store.usage.record('old', [delta('key_a', '2026-03-01', 'GET /v1/keys', 1, 1)], new Date()), true);
});
