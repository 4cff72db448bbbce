import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import { sign as octokitSign } from '@octokit/webhooks-methods';
import Stripe from 'stripe';
import { assertProblem } from '../harness/authSuite.ts';
import { queryRows } from '../harness/db.ts';
import { TEST_DATABASE_URL, TEST_ENGINE } from '../harness/engine.ts';
import { startHarness } from '../harness/startHarness.ts';
import type { Harness } from '../harness/startHarness.ts';
import { startTcpProxy } from '../harness/tcpProxy.ts';

interface Created {
  id: string;
  secret: string;
  url: string;
}

async function source(h: Harness, body: Record<string, unknown>): Promise<Created> {
  const res = await h.post('/v1/sources', { body });
  assert.equal(res.statusCode, 201, res.body);
  return res.json<Created>();
}

async function githubDelivery(h: Harness, src: Created, payload: object, delivery: string, secret = src.secret, event = 'push') {
  const body = JSON.stringify(payload);
  return h.post(src.url, { key: null, payload: body, headers: { 'content-type': 'application/json', 'x-github-event': event, 'x-github-delivery': delivery, 'x-hub-signature-256': await octokitSign(secret, body) } });
}

const count = async (h: Harness, table: string): Promise<number> => Number((await queryRows<{ n: number | string }>(h, `SELECT count(*) AS n FROM ${table}`))[0]!.n);

test('a signed GitHub delivery is stored with its job and acknowledged; its redelivery is acknowledged with the same id and stored once', async (t) => {
  const h = await startHarness(t);
  const gh = await source(h, { name: 'GitHub', slug: 'gh', type: 'github' });
  const first = await githubDelivery(h, gh, { ref: 'refs/heads/main', commits: [{ message: 'naïve ✓' }] }, 'guid-1');
  assert.equal(first.statusCode, 200, first.body);
  const { eventId, duplicate } = first.json<{ eventId: string; duplicate: boolean }>();
  assert.match(eventId, /^evt_[0-9a-z]{26}$/);
  assert.equal(duplicate, false);

  const again = await githubDelivery(h, gh, { ref: 'refs/heads/main', commits: [{ message: 'naïve ✓' }] }, 'guid-1');
  assert.deepEqual(again.json(), { eventId, duplicate: true });
  assert.equal(await count(h, 'events'), 1);
  assert.equal(await count(h, 'jobs'), 1);

  // By id as well as by slug; a different delivery is a new event.
  assert.equal((await githubDelivery(h, { ...gh, url: `/in/${gh.id}` }, { zen: 'x' }, 'guid-2', gh.secret, 'ping')).json().duplicate, false);
  const rows = await queryRows<{ id: string; type: string; delivery_id: string; headers: string | object; body: Buffer | Uint8Array }>(h, 'SELECT id, type, delivery_id, headers, body FROM events ORDER BY seq');
  assert.deepEqual(
    rows.map((r) => [r.type, r.delivery_id]),
    [
      ['github.push', 'guid-1'],
      ['github.ping', 'guid-2'],
    ],
  );
  // The raw bytes, exactly as received.
  assert.equal(Buffer.from(rows[0]!.body).toString('utf8'), JSON.stringify({ ref: 'refs/heads/main', commits: [{ message: 'naïve ✓' }] }));
  const metrics = (await h.get('/metrics')).body;
  assert.match(metrics, new RegExp(`portcullis_webhooks_received_total\\{source="${gh.id}",type="github.push"\\} 1`));
  assert.match(metrics, new RegExp(`portcullis_webhooks_duplicates_total\\{source="${gh.id}",type="github.push"\\} 1`));
});

test('concurrent copies of one delivery are stored exactly once', async (t) => {
  const h = await startHarness(t);
  const gh = await source(h, { name: 'GitHub', type: 'github' });
  const results = await Promise.all(Array.from({ length: 20 }, () => githubDelivery(h, gh, { n: 1 }, 'same-guid')));
  assert.ok(results.every((r) => r.statusCode === 200));
  const answers = results.map((r) => r.json<{ eventId: string; duplicate: boolean }>());
  assert.equal(new Set(answers.map((a) => a.eventId)).size, 1);
  assert.equal(answers.filter((a) => !a.duplicate).length, 1);
  assert.equal(await count(h, 'events'), 1);
});

test('forged, unsigned and stale deliveries are refused with 401 and nothing is stored', async (t) => {
  const h = await startHarness(t);
  const gh = await source(h, { name: 'GitHub', type: 'github' });
  const forged = await githubDelivery(h, gh, { a: 1 }, 'g1', 'not-the-secret');
  assertProblem(forged, 401, 'signature-invalid');
  assert.equal(forged.json().reason, 'bad-signature');
  const unsigned = await h.post(gh.url, { key: null, body: { a: 1 }, headers: { 'x-github-event': 'push' } });
  assertProblem(unsigned, 401, 'signature-invalid');
  assert.equal(unsigned.json().reason, 'missing-signature');

  const stripe = await source(h, { name: 'Stripe', type: 'stripe', secret: 'whsec_stripe_test_secret' });
  const payload = JSON.stringify({ id: 'evt_1', type: 'charge.succeeded' });
  const stale = new Stripe('sk_test_x').webhooks.generateTestHeaderString({ payload, secret: 'whsec_stripe_test_secret', timestamp: Math.floor(h.clock().getTime() / 1000) - 600 });
  const refused = await h.post(stripe.url, { key: null, payload, headers: { 'content-type': 'application/json', 'stripe-signature': stale } });
  assertProblem(refused, 401, 'signature-invalid');
  assert.equal(refused.json().reason, 'stale-timestamp');

  const notJson = await h.post(gh.url, { key: null, payload: 'not json', headers: { 'content-type': 'application/json', 'x-github-event': 'push', 'x-hub-signature-256': await octokitSign(gh.secret, 'not json') } });
  assertProblem(notJson, 400, 'malformed-request');
  assert.equal(await count(h, 'events'), 0);
  assert.match((await h.get('/metrics')).body, new RegExp(`portcullis_webhooks_rejected_total\\{source="${gh.id}",reason="bad-signature"\\} 1`));
});

test('an unknown source is a 404', async (t) => {
  const h = await startHarness(t);
  assertProblem(await h.post('/in/nope', { key: null, body: {} }), 404, 'not-found');
  assertProblem(await h.post('/in/src_01jdx3m5a8q2v7k4r9t6w1y3zb', { key: null, body: {} }), 404, 'not-found');
});

function rawPost(base: string, path: string, headers: Record<string, string>, chunks: Buffer[]): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${base}${path}`, { method: 'POST', headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('error', reject);
    for (const c of chunks) req.write(c);
    req.end();
  });
}

test('a delivery over the source limit is a 413, declared or streamed, and nothing is stored', async (t) => {
  const h = await startHarness(t);
  const src = await source(h, { name: 'small', type: 'github', bodyLimit: 2048 });
  const big = JSON.stringify({ pad: 'x'.repeat(5000) });
  const declared = await githubDelivery(h, src, { pad: 'x'.repeat(5000) }, 'big-1');
  assertProblem(declared, 413, 'payload-too-large');
  const base = await h.listen();
  const streamed = await rawPost(
    base,
    src.url,
    { 'content-type': 'application/json', 'transfer-encoding': 'chunked', 'x-github-event': 'push', 'x-hub-signature-256': await octokitSign(src.secret, big) },
    [Buffer.from(big.slice(0, 1500)), Buffer.from(big.slice(1500))],
  );
  assert.equal(streamed.status, 413);
  assert.equal(JSON.parse(streamed.body).code, 'payload-too-large');
  assert.equal(await count(h, 'events'), 0);
  // Under the limit it is accepted.
  assert.equal((await githubDelivery(h, src, { small: true }, 'ok-1')).statusCode, 200);
});

test('a duplicate outside the dedup window is a new event', async (t) => {
  const h = await startHarness(t);
  const gh = await source(h, { name: 'GitHub', type: 'github', dedupWindowSeconds: 3600 });
  const first = (await githubDelivery(h, gh, { a: 1 }, 'g')).json();
  h.clock.advance(3_599_000);
  assert.deepEqual((await githubDelivery(h, gh, { a: 1 }, 'g')).json(), { ...first, duplicate: true });
  h.clock.advance(2_000);
  const later = (await githubDelivery(h, gh, { a: 1 }, 'g')).json();
  assert.equal(later.duplicate, false);
  assert.notEqual(later.eventId, first.eventId);
  assert.equal(await count(h, 'events'), 2);
});

test('Hugging Face deliveries are stored without the secret header; dedup on content', async (t) => {
  const h = await startHarness(t);
  const hf = await source(h, { name: 'HF', type: 'huggingface', secret: 'hf-shared-secret' });
  const body = { event: { action: 'update', scope: 'repo.content' }, repo: { type: 'model', name: 'org/m' } };
  const first = await h.post(hf.url, { key: null, body, headers: { 'x-webhook-secret': 'hf-shared-secret' } });
  assert.equal(first.statusCode, 200, first.body);
  assert.equal((await h.post(hf.url, { key: null, body, headers: { 'x-webhook-secret': 'hf-shared-secret' } })).json().duplicate, true);
  const [row] = await queryRows<{ type: string; headers: string | object }>(h, 'SELECT type, headers FROM events');
  assert.equal(row!.type, 'huggingface.repo.content.update');
  assert.ok(!JSON.stringify(row!.headers).includes('hf-shared-secret'));
  assertProblem(await h.post(hf.url, { key: null, body, headers: { 'x-webhook-secret': 'wrong' } }), 401, 'signature-invalid');
});

test('during a secret rotation both secrets are accepted, afterwards only the new one', async (t) => {
  const h = await startHarness(t);
  const gh = await source(h, { name: 'GitHub', type: 'github', secret: 'old-secret-value' });
  await h.post(`/v1/sources/${gh.id}/rotate-secret`, { body: { secret: 'new-secret-value', gracePeriodSeconds: 600 } });
  assert.equal((await githubDelivery(h, gh, { a: 1 }, 'r1', 'old-secret-value')).statusCode, 200);
  assert.equal((await githubDelivery(h, gh, { a: 2 }, 'r2', 'new-secret-value')).statusCode, 200);
  h.clock.advance(600_000);
  assertProblem(await githubDelivery(h, gh, { a: 3 }, 'r3', 'old-secret-value'), 401, 'signature-invalid');
  assert.equal((await githubDelivery(h, gh, { a: 4 }, 'r4', 'new-secret-value')).statusCode, 200);
});

test('Slack url_verification is answered with its challenge and not stored', async (t) => {
  const h = await startHarness(t);
  const slack = await source(h, { name: 'Slack', type: 'slack', secret: 'slack-signing-secret' });
  const ts = String(Math.floor(h.clock().getTime() / 1000));
  const body = JSON.stringify({ type: 'url_verification', challenge: 'chal-123', token: 't' });
  const sig = `v0=${createHmac('sha256', 'slack-signing-secret').update(`v0:${ts}:${body}`).digest('hex')}`;
  const res = await h.post(slack.url, { key: null, payload: body, headers: { 'content-type': 'application/json', 'x-slack-request-timestamp': ts, 'x-slack-signature': sig } });
  assert.equal(res.statusCode, 200);
  assert.equal(res.body, 'chal-123');
  assert.equal(await count(h, 'events'), 0);
});

async function withStoreOutage(t: TestContext): Promise<{ h: Harness; cut: () => Promise<void> }> {
  if (TEST_ENGINE === 'sqlite') {
    const h = await startHarness(t);
    return { h, cut: () => h.services.store.close() };
  }
  const direct = new URL(TEST_DATABASE_URL!);
  const proxy = await startTcpProxy({ host: direct.hostname, port: Number(direct.port || 5432) });
  t.after(() => proxy.close());
  const h = await startHarness(t, { env: { PORTCULLIS_DATABASE_URL: proxy.via(TEST_DATABASE_URL!) } });
  return { h, cut: async () => proxy.cut() };
}

test('with the store down a delivery gets 503, never a 2xx, so the provider retries', async (t) => {
  const { h, cut } = await withStoreOutage(t);
  const gh = await source(h, { name: 'GitHub', type: 'github' });
  await cut();
  const res = await githubDelivery(h, gh, { a: 1 }, 'down-1');
  assertProblem(res, 503, 'store-unavailable');
  assert.ok(Number(res.headers['retry-after']) > 0);
});

test('a delivery larger than the API body limit but within the source limit is accepted', async (t) => {
  const h = await startHarness(t);
  const gh = await source(h, { name: 'GitHub', type: 'github' });
  const res = await githubDelivery(h, gh, { pad: 'x'.repeat(3_000_000) }, 'big-ok');
  assert.equal(res.statusCode, 200, res.body);
  assert.equal(await count(h, 'events'), 1);
});
