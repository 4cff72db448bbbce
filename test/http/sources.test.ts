import assert from 'node:assert/strict';
import { test } from 'node:test';
import { assertProblem, runAuthSuite } from '../harness/authSuite.ts';
import { queryRows } from '../harness/db.ts';
import { startHarness } from '../harness/startHarness.ts';
import type { Harness } from '../harness/startHarness.ts';

interface SourceBody {
  id: string;
  slug: string | null;
  type: string;
  url: string;
  secret?: string;
  dedupWindowSeconds: number;
  bodyLimit: number;
  rateLimitMode: string;
  previousSecretExpiresAt: string | null;
}

async function create(h: Harness, body: Record<string, unknown>): Promise<SourceBody> {
  const res = await h.post('/v1/sources', { body });
  assert.equal(res.statusCode, 201, res.body);
  return res.json<SourceBody>();
}

/** Every stored column of the sources table, read behind the API's back. */
async function storedRows(h: Harness): Promise<string> {
  return JSON.stringify(await queryRows(h, 'SELECT * FROM sources'));
}

runAuthSuite({ method: 'GET', url: '/v1/sources', scope: 'sources:read' });
runAuthSuite({ method: 'POST', url: '/v1/sources', scope: 'sources:write', body: { name: 'x', type: 'github' } });
runAuthSuite({
  method: 'POST',
  url: async (h) => `/v1/sources/${(await create(h, { name: 'x', type: 'github' })).id}/reveal-secret`,
  scope: 'sources:write',
});

test('a source is created with a generated secret shown once, listed and read without it, and sealed at rest', async (t) => {
  const h = await startHarness(t);
  const gh = await create(h, { name: 'GitHub', slug: 'github-main', type: 'github' });
  assert.match(gh.id, /^src_[0-9a-z]{26}$/);
  assert.equal(gh.url, '/in/github-main');
  assert.match(gh.secret!, /^[0-9A-Za-z]{40}$/);
  assert.equal(gh.dedupWindowSeconds, 259200);
  assert.equal(gh.bodyLimit, 25 * 1024 * 1024);
  assert.equal(gh.rateLimitMode, 'reject');

  const sw = await create(h, { name: 'Svix sender', type: 'standard-webhooks', bodyLimit: 2048, dedupWindowSeconds: 3600 });
  assert.match(sw.secret!, /^whsec_[A-Za-z0-9+/]+=*$/);
  assert.equal(sw.url, `/in/${sw.id}`);
  assert.equal(sw.bodyLimit, 2048);

  const got = await h.get(`/v1/sources/${gh.id}`);
  assert.equal(got.statusCode, 200);
  assert.equal(got.json().secret, undefined);
  const list = await h.get('/v1/sources');
  assert.deepEqual(
    list.json<{ data: SourceBody[] }>().data.map((s) => s.id),
    [gh.id, sw.id],
  );
  assert.ok(!list.body.includes(gh.secret!) && !list.body.includes(sw.secret!));

  const stored = await storedRows(h);
  assert.ok(!stored.includes(gh.secret!) && !stored.includes(sw.secret!.slice(6)), 'secrets are not stored in clear');
  assert.ok(!h.logText().includes(gh.secret!), 'nor logged');
});

test('providers that generate their own secret need it given; generic sources need their scheme', async (t) => {
  const h = await startHarness(t);
  for (const type of ['stripe', 'shopify', 'slack']) {
    assertProblem(await h.post('/v1/sources', { body: { name: 'x', type } }), 400, 'validation-failed');
  }
  const stripe = await create(h, { name: 'Stripe', type: 'stripe', secret: 'whsec_from_stripe_dashboard' });
  assert.equal(stripe.secret, 'whsec_from_stripe_dashboard');
  assertProblem(await h.post('/v1/sources', { body: { name: 'g', type: 'generic' } }), 400, 'validation-failed');
  assertProblem(await h.post('/v1/sources', { body: { name: 'g', type: 'github', generic: { signatureHeader: 'x-sig' } } }), 400, 'validation-failed');
  const generic = await h.post('/v1/sources', { body: { name: 'g', type: 'generic', generic: { signatureHeader: 'x-acme-signature', prefix: 'sha256=' } } });
  assert.equal(generic.statusCode, 201, generic.body);
  assert.deepEqual(generic.json().generic, {
    signatureHeader: 'x-acme-signature',
    algorithm: 'sha256',
    encoding: 'hex',
    prefix: 'sha256=',
    timestampHeader: null,
    toleranceSeconds: 300,
    signedContent: 'body',
    dedupHeader: null,
    dedupJsonPath: null,
    typeHeader: null,
    typeJsonPath: null,
  });
});

test('the secret is revealed only on request, logged, and rotation keeps the previous one for the grace period', async (t) => {
  const h = await startHarness(t);
  const src = await create(h, { name: 'HF', slug: 'hf', type: 'huggingface', secret: 'hf-secret-one' });
  const revealed = await h.post(`/v1/sources/${src.id}/reveal-secret`);
  assert.equal(revealed.statusCode, 200);
  assert.deepEqual(revealed.json(), { secret: 'hf-secret-one', previousSecret: null, previousSecretExpiresAt: null });
  assert.match(h.logText(), /"event":"source.secret.revealed".*"sourceId":"src_/);

  const rotated = await h.post(`/v1/sources/${src.id}/rotate-secret`, { body: { secret: 'hf-secret-two', gracePeriodSeconds: 3600 } });
  assert.equal(rotated.statusCode, 200, rotated.body);
  assert.equal(rotated.json().secret, 'hf-secret-two');
  assert.ok(rotated.json().previousSecretExpiresAt);
  assert.deepEqual((await h.post(`/v1/sources/${src.id}/reveal-secret`)).json().previousSecret, 'hf-secret-one');
  h.clock.advance(3_600_000);
  assert.equal((await h.post(`/v1/sources/${src.id}/reveal-secret`)).json().previousSecret, null);

  const generated = await h.post(`/v1/sources/${src.id}/rotate-secret`);
  assert.equal(generated.statusCode, 200, generated.body);
  assert.match(generated.json().secret, /^[0-9A-Za-z]{40}$/);
  assert.equal(generated.json().previousSecretExpiresAt, null, 'no grace: the old secret stops now');
});

test('update changes settings and slug; slugs are unique; delete frees the slug', async (t) => {
  const h = await startHarness(t);
  const a = await create(h, { name: 'A', slug: 'alpha', type: 'github' });
  const b = await create(h, { name: 'B', slug: 'beta', type: 'github' });
  assertProblem(await h.post('/v1/sources', { body: { name: 'C', slug: 'alpha', type: 'github' } }), 409, 'conflict');
  assertProblem(await h.patch(`/v1/sources/${b.id}`, { body: { slug: 'alpha' } }), 409, 'conflict');
  const patched = await h.patch(`/v1/sources/${a.id}`, { body: { slug: 'alpha-2', dedupWindowSeconds: 600, metadata: { team: 'infra' } } });
  assert.equal(patched.statusCode, 200, patched.body);
  assert.deepEqual([patched.json().url, patched.json().dedupWindowSeconds, patched.json().metadata], ['/in/alpha-2', 600, { team: 'infra' }]);
  assert.equal((await h.patch(`/v1/sources/${a.id}`, { body: { slug: null } })).json().url, `/in/${a.id}`);

  const deleted = await h.request('DELETE', `/v1/sources/${b.id}`);
  assert.equal(deleted.statusCode, 204);
  assertProblem(await h.get(`/v1/sources/${b.id}`), 404, 'not-found');
  assert.equal((await h.post('/v1/sources', { body: { name: 'C', slug: 'beta', type: 'github' } })).statusCode, 201);
});

test('source requests are validated, unknown ids are 404, and nothing is written on a refusal', async (t) => {
  const h = await startHarness(t);
  const bad: Record<string, unknown>[] = [
    {},
    { name: 'x' },
    { name: 'x', type: 'gitlab' },
    { name: 'x', type: 'github', slug: 'Has Spaces' },
    { name: 'x', type: 'github', secret: 'short' },
    { name: 'x', type: 'github', bodyLimit: 10 },
    { name: 'x', type: 'github', dedupWindowSeconds: '3600' },
    { name: 'x', type: 'github', rateLimitPolicy: 'nope' },
    { name: 'x', type: 'github', rateLimitMode: 'drop' },
    { name: 'x', type: 'github', extra: 1 },
    { name: 'x', type: 'generic', generic: { signatureHeader: 'x-s', algorithm: 'md5' } },
  ];
  for (const body of bad) assertProblem(await h.post('/v1/sources', { body }), 400, 'validation-failed');
  assertProblem(await h.post('/v1/sources', { payload: '{"name":', headers: { 'content-type': 'application/json' } }), 400, 'malformed-request');
  assertProblem(await h.post('/v1/sources', { payload: 'x', headers: { 'content-type': 'text/plain' } }), 415, 'unsupported-media-type');
  assertProblem(await h.post('/v1/sources', { payload: JSON.stringify({ name: 'x'.repeat(2_000_000), type: 'github' }), headers: { 'content-type': 'application/json' } }), 413, 'payload-too-large');
  assert.equal((await h.get('/v1/sources')).json().data.length, 0);

  const src = await create(h, { name: 'x', type: 'github' });
  for (const body of [{}, { type: 'stripe' }, { bodyLimit: -1 }, { slug: 5 }]) assertProblem(await h.patch(`/v1/sources/${src.id}`, { body }), 400, 'validation-failed');
  for (const id of ['src_01jdx3m5a8q2v7k4r9t6w1y3zb', 'nope', 'key_01jdx3m5a8q2v7k4r9t6w1y3zb']) {
    assertProblem(await h.get(`/v1/sources/${id}`), 404, 'not-found');
    assertProblem(await h.patch(`/v1/sources/${id}`, { body: { name: 'y' } }), 404, 'not-found');
    assertProblem(await h.post(`/v1/sources/${id}/reveal-secret`), 404, 'not-found');
    assertProblem(await h.request('DELETE', `/v1/sources/${id}`), 404, 'not-found');
  }
  assertProblem(await h.post(`/v1/sources/${src.id}/rotate-secret`, { body: { gracePeriodSeconds: -5 } }), 400, 'validation-failed');
});

test('reveal and rotate need sources:write; a reader sees no secret anywhere', async (t) => {
  const h = await startHarness(t);
  const src = await create(h, { name: 'x', type: 'github' });
  const reader = await h.createKey(['sources:read']);
  assertProblem(await h.post(`/v1/sources/${src.id}/reveal-secret`, { key: reader.secret }), 403, 'scope-missing');
  assertProblem(await h.post(`/v1/sources/${src.id}/rotate-secret`, { key: reader.secret }), 403, 'scope-missing');
  assertProblem(await h.request('DELETE', `/v1/sources/${src.id}`, { key: reader.secret }), 403, 'scope-missing');
  const seen = [await h.get('/v1/sources', { key: reader.secret }), await h.get(`/v1/sources/${src.id}`, { key: reader.secret })];
  for (const res of seen) {
    assert.equal(res.statusCode, 200);
    assert.ok(!res.body.includes(src.secret!));
  }
  // A create replayed with its Idempotency-Key does not show the secret again.
  const first = await h.post('/v1/sources', { body: { name: 'y', type: 'github' }, headers: { 'idempotency-key': 'src-1' } });
  const again = await h.post('/v1/sources', { body: { name: 'y', type: 'github' }, headers: { 'idempotency-key': 'src-1' } });
  assert.equal(first.statusCode, 201);
  assertProblem(again, 409, 'idempotency-secret-not-replayed');
  assert.equal(again.json().resourceId, first.json().id);
});
