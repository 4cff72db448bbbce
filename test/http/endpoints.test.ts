import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import type { Resolver } from '../../src/outbound/ssrf.ts';
import { assertProblem, runAuthSuite } from '../harness/authSuite.ts';
import { queryRows } from '../harness/db.ts';
import { startHarness } from '../harness/startHarness.ts';
import type { Harness, HarnessOptions } from '../harness/startHarness.ts';

interface EndpointBody {
  id: string;
  url: string;
  description: string;
  eventTypes: string[];
  sourceIds: string[];
  headers: Record<string, string>;
  sensitiveHeaders: string[];
  rateLimitPerSecond: number | null;
  timeoutSeconds: number;
  retrySchedule: number[] | null;
  enabled: boolean;
  disabledReason: string | null;
  consecutiveFailures: number;
  failingSince: string | null;
  metadata: Record<string, unknown>;
  previousSecretExpiresAt: string | null;
  createdAt: string;
  updatedAt: string;
  secret?: string;
}

/** A public address that needs no DNS: the SSRF guard lets it through, and nothing connects to it here. */
const PUBLIC_URL = 'https://93.184.216.34/hooks/portcullis';

/** Host names as the tests' DNS answers them; an unknown name fails as getaddrinfo would. */
const names =
  (table: Record<string, string[]>): Resolver =>
  async (hostname) => {
    const addresses = table[hostname];
    if (!addresses) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' });
    return addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
  };

const DNS = names({
  'hooks.example.com': ['93.184.216.34', '2606:2800:220:1:248:1893:25c8:1946'],
  'internal.example': ['10.0.0.5'],
  'mixed.example': ['93.184.216.34', '192.168.1.1'],
  'metadata.example': ['169.254.169.254'],
  'sneaky.example': ['::ffff:127.0.0.1'],
  localhost: ['127.0.0.1', '::1'],
});

const harness = (t: Parameters<typeof startHarness>[0], options: HarnessOptions = {}): Promise<Harness> => startHarness(t, { resolver: DNS, ...options });

async function create(h: Harness, body: Record<string, unknown>): Promise<EndpointBody> {
  const res = await h.post('/v1/endpoints', { body });
  assert.equal(res.statusCode, 201, res.body);
  return res.json<EndpointBody>();
}

async function storedCount(h: Harness): Promise<number> {
  return (await queryRows(h, 'SELECT id FROM endpoints')).length;
}

runAuthSuite({ method: 'GET', url: '/v1/endpoints', scope: 'endpoints:read' });
runAuthSuite({ method: 'POST', url: '/v1/endpoints', scope: 'endpoints:write', body: { url: PUBLIC_URL } });
runAuthSuite({
  method: 'POST',
  url: async (h) => `/v1/endpoints/${(await create(h, { url: PUBLIC_URL })).id}/reveal-secret`,
  scope: 'endpoints:write',
});

test('an endpoint is created with defaults and a generated whsec_ secret shown once, then read and listed without it, sealed at rest', async (t) => {
  const h = await harness(t);
  const ep = await create(h, { url: PUBLIC_URL });
  assert.match(ep.id, /^ep_[0-9a-z]{26}$/);
  assert.match(ep.secret!, /^whsec_[A-Za-z0-9+/]{32}$/);
  assert.equal(Buffer.from(ep.secret!.slice(6), 'base64').length, 24);
  const { secret, createdAt, updatedAt, ...rest } = ep;
  assert.ok(secret && createdAt === updatedAt);
  assert.deepEqual(rest, {
    id: ep.id,
    url: PUBLIC_URL,
    description: '',
    eventTypes: [],
    sourceIds: [],
    headers: {},
    sensitiveHeaders: [],
    rateLimitPerSecond: null,
    timeoutSeconds: 15,
    retrySchedule: null,
    enabled: true,
    disabledReason: null,
    consecutiveFailures: 0,
    failingSince: null,
    metadata: {},
    previousSecretExpiresAt: null,
  });

  const got = await h.get(`/v1/endpoints/${ep.id}`);
  assert.equal(got.statusCode, 200);
  assert.equal(got.json().secret, undefined);
  assert.deepEqual(got.json(), { ...rest, createdAt, updatedAt });
  const list = await h.get('/v1/endpoints');
  assert.deepEqual(
    list.json<{ data: EndpointBody[] }>().data.map((e) => e.id),
    [ep.id],
  );
  assert.ok(!list.body.includes(secret) && !got.body.includes(secret.slice(6)));

  const stored = JSON.stringify(await queryRows(h, 'SELECT * FROM endpoints'));
  assert.ok(!stored.includes(secret.slice(6)), 'the secret is not stored in clear');
  assert.ok(!h.logText().includes(secret.slice(6)), 'nor logged');
  const [row] = await queryRows<{ timeout_ms: number | string }>(h, 'SELECT timeout_ms FROM endpoints');
  assert.equal(Number(row!.timeout_ms), 15_000);
});

test('every field is taken at creation, normalised, and changed by PATCH; delete removes it', async (t) => {
  const h = await harness(t);
  const source = await h.post('/v1/sources', { body: { name: 'GitHub', type: 'github' } });
  const sourceId = source.json<{ id: string }>().id;
  const given = `whsec_${randomBytes(32).toString('base64')}`;
  const ep = await create(h, {
    url: 'HTTPS://Hooks.Example.COM:443/in?team=billing',
    description: 'billing receiver',
    eventTypes: ['github.push', 'github.pull_request.*', 'portcullis.*'],
    sourceIds: [sourceId],
    headers: { 'X-Team': 'billing', Authorization: 'Bearer receiver-token' },
    rateLimitPerSecond: 50,
    timeoutSeconds: 30,
    retrySchedule: [0, 10, 60],
    enabled: false,
    metadata: { customer: 'acme' },
    secret: given,
  });
  assert.equal(ep.secret, given);
  assert.equal(ep.url, 'https://hooks.example.com/in?team=billing', 'stored as the URL parser normalises it');
  assert.deepEqual([ep.headers, ep.sensitiveHeaders], [{ 'x-team': 'billing' }, ['authorization']], 'header names are lower-cased; a credential is not shown');
  assert.deepEqual(
    [ep.description, ep.eventTypes, ep.sourceIds, ep.rateLimitPerSecond, ep.timeoutSeconds, ep.retrySchedule, ep.enabled, ep.disabledReason, ep.metadata],
    ['billing receiver', ['github.push', 'github.pull_request.*', 'portcullis.*'], [sourceId], 50, 30, [0, 10, 60], false, null, { customer: 'acme' }],
  );

  h.clock.advance(1000);
  const patched = await h.patch(`/v1/endpoints/${ep.id}`, {
    body: { url: PUBLIC_URL, eventTypes: [], sourceIds: [], headers: { 'X-Team': null, authorization: null }, rateLimitPerSecond: null, timeoutSeconds: 5, retrySchedule: null, enabled: true, description: 'moved' },
  });
  assert.equal(patched.statusCode, 200, patched.body);
  const p = patched.json<EndpointBody>();
  assert.deepEqual(
    [p.url, p.eventTypes, p.sourceIds, p.headers, p.sensitiveHeaders, p.rateLimitPerSecond, p.timeoutSeconds, p.retrySchedule, p.enabled, p.description, p.metadata],
    [PUBLIC_URL, [], [], {}, [], null, 5, null, true, 'moved', { customer: 'acme' }],
  );
  assert.ok(p.updatedAt > p.createdAt);
  assert.equal(p.createdAt, ep.createdAt);
  assert.equal((await h.get(`/v1/endpoints/${ep.id}`)).json().timeoutSeconds, 5);
  assert.equal((await h.post(`/v1/endpoints/${ep.id}/reveal-secret`)).json().secret, given, 'a PATCH never changes the secret');

  const deleted = await h.request('DELETE', `/v1/endpoints/${ep.id}`);
  assert.equal(deleted.statusCode, 204);
  assert.equal(deleted.body, '');
  assertProblem(await h.get(`/v1/endpoints/${ep.id}`), 404, 'not-found');
  assertProblem(await h.request('DELETE', `/v1/endpoints/${ep.id}`), 404, 'not-found');
  assert.equal(await storedCount(h), 0);
});

test('endpoints are listed in creation order a page at a time', async (t) => {
  const h = await harness(t);
  const ids: string[] = [];
  for (let i = 0; i < 5; i++) ids.push((await create(h, { url: `${PUBLIC_URL}/${i}` })).id);
  const seen: string[] = [];
  let cursor: string | null = null;
  do {
    const res = await h.get(`/v1/endpoints?limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    assert.equal(res.statusCode, 200, res.body);
    const page = res.json<{ data: EndpointBody[]; nextCursor: string | null }>();
    assert.ok(page.data.length <= 2);
    seen.push(...page.data.map((e) => e.id));
    cursor = page.nextCursor;
  } while (cursor);
  assert.deepEqual(seen, ids);
  assertProblem(await h.get('/v1/endpoints?cursor=garbage'), 400, 'invalid-cursor');
  assertProblem(await h.get('/v1/endpoints?limit=251'), 400, 'validation-failed');
});

test('the secret is revealed only on request and logged; rotation signs with both secrets for 24 h by default', async (t) => {
  const h = await harness(t);
  const ep = await create(h, { url: PUBLIC_URL });
  const first = ep.secret!;
  const revealed = await h.post(`/v1/endpoints/${ep.id}/reveal-secret`);
  assert.equal(revealed.statusCode, 200);
  assert.deepEqual(revealed.json(), { secret: first, previousSecret: null, previousSecretExpiresAt: null });
  assert.match(h.logText(), /"level":40.*"event":"endpoint.secret.revealed".*"endpointId":"ep_/);
  assert.ok(!h.logText().includes(first.slice(6)), 'the reveal log names the endpoint, not the secret');

  const rotated = await h.post(`/v1/endpoints/${ep.id}/rotate-secret`);
  assert.equal(rotated.statusCode, 200, rotated.body);
  const second = rotated.json<EndpointBody>().secret!;
  assert.match(second, /^whsec_[A-Za-z0-9+/]{32}$/);
  assert.notEqual(second, first);
  const graceEnds = new Date(h.clock().getTime() + 86_400_000).toISOString();
  assert.equal(rotated.json().previousSecretExpiresAt, graceEnds);
  assert.equal((await h.get(`/v1/endpoints/${ep.id}`)).json().previousSecretExpiresAt, graceEnds);
  assert.deepEqual((await h.post(`/v1/endpoints/${ep.id}/reveal-secret`)).json(), { secret: second, previousSecret: first, previousSecretExpiresAt: graceEnds });

  h.clock.advance(86_400_000);
  assert.deepEqual((await h.post(`/v1/endpoints/${ep.id}/reveal-secret`)).json(), { secret: second, previousSecret: null, previousSecretExpiresAt: null });
  assert.equal((await h.get(`/v1/endpoints/${ep.id}`)).json().previousSecretExpiresAt, null);

  const given = `whsec_${randomBytes(24).toString('base64')}`;
  const now = await h.post(`/v1/endpoints/${ep.id}/rotate-secret`, { body: { secret: given, gracePeriodSeconds: 0 } });
  assert.equal(now.statusCode, 200, now.body);
  assert.equal(now.json().secret, given);
  assert.equal(now.json().previousSecretExpiresAt, null, 'no grace: the previous secret stops now');
  assert.deepEqual((await h.post(`/v1/endpoints/${ep.id}/reveal-secret`)).json(), { secret: given, previousSecret: null, previousSecretExpiresAt: null });

  const week = await h.post(`/v1/endpoints/${ep.id}/rotate-secret`, { body: { gracePeriodSeconds: 7 * 86_400 } });
  assert.equal(week.statusCode, 200, week.body);
  assert.equal((await h.post(`/v1/endpoints/${ep.id}/reveal-secret`)).json().previousSecret, given);
  assertProblem(await h.post(`/v1/endpoints/${ep.id}/rotate-secret`, { body: { gracePeriodSeconds: 7 * 86_400 + 1 } }), 400, 'validation-failed');
  assertProblem(await h.post(`/v1/endpoints/${ep.id}/rotate-secret`, { body: { gracePeriodSeconds: -1 } }), 400, 'validation-failed');
  assertProblem(await h.post(`/v1/endpoints/${ep.id}/rotate-secret`, { body: { secret: 'whsec_c2hvcnQ=' } }), 400, 'validation-failed');
  assertProblem(await h.post(`/v1/endpoints/${ep.id}/rotate-secret`, { body: { extra: true } }), 400, 'validation-failed');
});

test('a create replayed with its Idempotency-Key does not show the secret again', async (t) => {
  const h = await harness(t);
  const first = await h.post('/v1/endpoints', { body: { url: PUBLIC_URL }, headers: { 'idempotency-key': 'ep-1' } });
  const again = await h.post('/v1/endpoints', { body: { url: PUBLIC_URL }, headers: { 'idempotency-key': 'ep-1' } });
  assert.equal(first.statusCode, 201);
  assertProblem(again, 409, 'idempotency-secret-not-replayed');
  assert.equal(again.json().resourceId, first.json().id);
  assert.ok(!again.body.includes(first.json().secret));
  assertProblem(await h.post('/v1/endpoints', { body: { url: `${PUBLIC_URL}/other` }, headers: { 'idempotency-key': 'ep-1' } }), 422, 'idempotency-mismatch');
  assert.equal(await storedCount(h), 1);
});

test('re-enabling a disabled endpoint clears its reason and failure streak; the store tracks failures and disables once', async (t) => {
  const h = await harness(t);
  const ep = await create(h, { url: PUBLIC_URL });
  const endpoints = h.services.store.endpoints;
  const t0 = h.clock();
  assert.deepEqual(await endpoints.recordResult(ep.id, false, t0), { consecutiveFailures: 1, failingSince: t0 });
  const t1 = new Date(t0.getTime() + 5000);
  assert.deepEqual(await endpoints.recordResult(ep.id, false, t1), { consecutiveFailures: 2, failingSince: t0 }, 'the streak keeps its start');
  assert.deepEqual(await endpoints.recordResult(ep.id, true, t1), { consecutiveFailures: 0, failingSince: null });
  await endpoints.recordResult(ep.id, false, t1);
  await endpoints.recordResult(ep.id, false, t1);
  assert.equal(await endpoints.recordResult('ep_01jdx3m5a8q2v7k4r9t6w1y3zb', false, t1), null);

  // An endpoint already enabled keeps its streak when a PATCH repeats enabled: true.
  const repeated = await h.patch(`/v1/endpoints/${ep.id}`, { body: { enabled: true } });
  assert.equal(repeated.json().consecutiveFailures, 2);

  const announcement = (id: string) => ({ message: { id, eventType: 'portcullis.endpoint.disabled', payload: Buffer.from('{}'), createdAt: t1 }, deliveries: [] });
  assert.equal(await endpoints.disable(ep.id, 'failing', t1, announcement('msg_01jdx3m5a8q2v7k4r9t6w1y3za')), true);
  assert.equal(await endpoints.disable(ep.id, 'gone', t1, announcement('msg_01jdx3m5a8q2v7k4r9t6w1y3zb')), false, 'only the call that disabled it says so');
  const announced = (await h.get('/v1/messages?eventType=portcullis.endpoint.disabled')).json<{ data: { id: string }[] }>().data;
  assert.deepEqual(announced.map((m) => m.id), ['msg_01jdx3m5a8q2v7k4r9t6w1y3za'], 'announced with the disabling, once');
  const disabled = (await h.get(`/v1/endpoints/${ep.id}`)).json<EndpointBody>();
  assert.deepEqual([disabled.enabled, disabled.disabledReason, disabled.consecutiveFailures, disabled.failingSince], [false, 'failing', 2, t1.toISOString()]);
  assert.equal((await endpoints.all()).find((e) => e.id === ep.id)?.enabled, false);

  const enabled = await h.patch(`/v1/endpoints/${ep.id}`, { body: { enabled: true } });
  assert.equal(enabled.statusCode, 200, enabled.body);
  const e = enabled.json<EndpointBody>();
  assert.deepEqual([e.enabled, e.disabledReason, e.consecutiveFailures, e.failingSince], [true, null, 0, null]);
  assert.match(h.logText(), /"event":"endpoint.enabled"/);

  // Disabled by hand: no reason; enabled again by hand.
  const off = await h.patch(`/v1/endpoints/${ep.id}`, { body: { enabled: false } });
  assert.deepEqual([off.json().enabled, off.json().disabledReason], [false, null]);
  assert.equal(await endpoints.disable(ep.id, 'gone', t1, announcement('msg_01jdx3m5a8q2v7k4r9t6w1y3zc')), false, 'already disabled');
  assert.equal((await h.patch(`/v1/endpoints/${ep.id}`, { body: { enabled: true } })).json().enabled, true);
});

test('endpoint requests are validated, types are never coerced, and nothing is written on a refusal', async (t) => {
  const h = await harness(t);
  const bad: Record<string, unknown>[] = [
    {},
    { url: 5 },
    { url: PUBLIC_URL, timeoutSeconds: '15' },
    { url: PUBLIC_URL, timeoutSeconds: 0 },
    { url: PUBLIC_URL, timeoutSeconds: 61 },
    { url: PUBLIC_URL, timeoutSeconds: 1.5 },
    { url: PUBLIC_URL, enabled: 'true' },
    { url: PUBLIC_URL, rateLimitPerSecond: 0 },
    { url: PUBLIC_URL, rateLimitPerSecond: 10_001 },
    { url: PUBLIC_URL, rateLimitPerSecond: '5' },
    { url: PUBLIC_URL, retrySchedule: [] },
    { url: PUBLIC_URL, retrySchedule: Array.from({ length: 21 }, () => 1) },
    { url: PUBLIC_URL, retrySchedule: [-1] },
    { url: PUBLIC_URL, retrySchedule: [86_401] },
    { url: PUBLIC_URL, retrySchedule: ['5'] },
    { url: PUBLIC_URL, eventTypes: 'github.push' },
    { url: PUBLIC_URL, eventTypes: ['*'] },
    { url: PUBLIC_URL, eventTypes: ['github.*.push'] },
    { url: PUBLIC_URL, eventTypes: ['has space'] },
    { url: PUBLIC_URL, eventTypes: ['a', 'a'] },
    { url: PUBLIC_URL, sourceIds: ['nope'] },
    { url: PUBLIC_URL, sourceIds: ['src_01jdx3m5a8q2v7k4r9t6w1y3zb'] },
    { url: PUBLIC_URL, description: 'x'.repeat(1001) },
    { url: PUBLIC_URL, metadata: [] },
    { url: PUBLIC_URL, metadata: { big: 'x'.repeat(9000) } },
    { url: PUBLIC_URL, extra: 1 },
    { url: PUBLIC_URL, timeoutMs: 1000 },
  ];
  for (const body of bad) assertProblem(await h.post('/v1/endpoints', { body }), 400, 'validation-failed');
  assertProblem(await h.post('/v1/endpoints', { payload: '{"url":', headers: { 'content-type': 'application/json' } }), 400, 'malformed-request');
  assertProblem(await h.post('/v1/endpoints', { payload: 'x', headers: { 'content-type': 'text/plain' } }), 415, 'unsupported-media-type');
  assertProblem(await h.post('/v1/endpoints', { payload: JSON.stringify({ url: PUBLIC_URL, description: 'x'.repeat(2_000_000) }), headers: { 'content-type': 'application/json' } }), 413, 'payload-too-large');
  assert.equal(await storedCount(h), 0);

  const ep = await create(h, { url: PUBLIC_URL });
  for (const body of [{}, { secret: `whsec_${randomBytes(24).toString('base64')}` }, { timeoutSeconds: '5' }, { enabled: 1 }, { url: 'ftp://example.com/' }, { headers: { Host: 'x' } }]) {
    assertProblem(await h.patch(`/v1/endpoints/${ep.id}`, { body }), 400, 'validation-failed');
  }
  assert.equal((await h.get(`/v1/endpoints/${ep.id}`)).json().url, PUBLIC_URL);
  for (const id of ['ep_01jdx3m5a8q2v7k4r9t6w1y3zb', 'nope', 'src_01jdx3m5a8q2v7k4r9t6w1y3zb']) {
    assertProblem(await h.get(`/v1/endpoints/${id}`), 404, 'not-found');
    assertProblem(await h.patch(`/v1/endpoints/${id}`, { body: { description: 'y' } }), 404, 'not-found');
    assertProblem(await h.post(`/v1/endpoints/${id}/reveal-secret`), 404, 'not-found');
    assertProblem(await h.post(`/v1/endpoints/${id}/rotate-secret`), 404, 'not-found');
    assertProblem(await h.request('DELETE', `/v1/endpoints/${id}`), 404, 'not-found');
  }
});

test('URLs must be absolute http(s) without credentials; the refusal never echoes the credentials', async (t) => {
  const h = await harness(t);
  const urls = [
    'ftp://example.com/hook',
    'file:///etc/passwd',
    'javascript:alert(1)',
    'gopher://93.184.216.34:70/_x',
    'data:text/plain,hi',
    'not a url',
    '/relative/path',
    '//93.184.216.34/hook',
    'http://',
    'http:93.184.216.34/hook',
    'http:/93.184.216.34/hook',
    ' https://93.184.216.34/hook',
    'https://93.184.216.34/ho ok',
    'http://300.1.1.1/',
    'http://[::1/',
    `https://93.184.216.34/${'a'.repeat(2048)}`,
  ];
  for (const url of urls) assertProblem(await h.post('/v1/endpoints', { body: { url } }), 400, 'validation-failed');
  for (const url of ['https://alice:hunter2-pass@93.184.216.34/hook', 'https://:hunter2-pass@93.184.216.34/hook', 'https://alice@93.184.216.34/hook']) {
    const res = await h.post('/v1/endpoints', { body: { url } });
    const problem = assertProblem(res, 400, 'validation-failed');
    assert.match(String(problem.detail), /credentials/);
    assert.ok(!res.body.includes('hunter2') && !res.body.includes('alice'), res.body);
  }
  assert.ok(!h.logText().includes('hunter2'));
  assert.equal(await storedCount(h), 0);
});

test('headers the delivery sets, hop-by-hop headers, and malformed or duplicate headers are refused', async (t) => {
  const h = await harness(t);
  const bad: Record<string, string>[] = [
    { Host: 'internal' },
    { 'Content-Length': '1' },
    { 'content-type': 'text/plain' },
    { 'Content-Encoding': 'gzip' },
    { Connection: 'close' },
    { 'Keep-Alive': 'timeout=5' },
    { 'Transfer-Encoding': 'chunked' },
    { Upgrade: 'websocket' },
    { TE: 'trailers' },
    { Trailer: 'x' },
    { 'Proxy-Authorization': 'Basic x' },
    { Expect: '100-continue' },
    { 'User-Agent': 'me' },
    { 'webhook-id': 'msg_1' },
    { 'Webhook-Timestamp': '1' },
    { 'WEBHOOK-SIGNATURE': 'v1,x' },
    { 'portcullis-event-type': 'x' },
    { 'Portcullis-Source': 'x' },
    { 'bad name': 'x' },
    { 'x-ok:': 'x' },
    { '': 'x' },
    { 'x-inject': 'a\r\nx-evil: 1' },
    { 'x-nul': 'a\u0000b' },
    { 'x-unicode': 'café' },
    { 'X-Dup': '1', 'x-dup': '2' },
    { 'x-long': 'x'.repeat(4097) },
    Object.fromEntries(Array.from({ length: 21 }, (_, i) => [`x-h${i}`, 'v'])),
  ];
  for (const headers of bad) {
    assertProblem(await h.post('/v1/endpoints', { body: { url: PUBLIC_URL, headers } }), 400, 'validation-failed');
  }
  assertProblem(await h.post('/v1/endpoints', { body: { url: PUBLIC_URL, headers: { 'x-n': 5 } } }), 400, 'validation-failed');
  assert.equal(await storedCount(h), 0);
  const ok = await create(h, { url: PUBLIC_URL, headers: { 'X-Api-Key': 'k', 'x-portcullis': 'allowed: no dash after' } });
  assert.deepEqual([ok.headers, ok.sensitiveHeaders], [{ 'x-portcullis': 'allowed: no dash after' }, ['x-api-key']]);

  // The same checks on a PATCH, and the count after merging.
  for (const headers of bad.slice(0, -1)) {
    assertProblem(await h.patch(`/v1/endpoints/${ok.id}`, { body: { headers } }), 400, 'validation-failed');
  }
  const nineteen = Object.fromEntries(Array.from({ length: 19 }, (_, i) => [`x-h${i}`, 'v']));
  assert.match(String(assertProblem(await h.patch(`/v1/endpoints/${ok.id}`, { body: { headers: nineteen } }), 400, 'validation-failed').detail), /at most 20 headers, and this change leaves 21/);
  const unchanged = (await h.get(`/v1/endpoints/${ok.id}`)).json<EndpointBody>();
  assert.deepEqual([unchanged.headers, unchanged.sensitiveHeaders, unchanged.updatedAt], [ok.headers, ok.sensitiveHeaders, ok.updatedAt], 'nothing written');
});

test('header values are sealed at rest, credentials are write-only, and a PATCH merges headers', async (t) => {
  const h = await harness(t);
  const token = `Bearer ${randomBytes(16).toString('hex')}`;
  const ep = await create(h, { url: PUBLIC_URL, headers: { Authorization: token, 'X-Session-Id': 's-1', 'X-Team': 'billing' } });
  assert.deepEqual([ep.headers, ep.sensitiveHeaders], [{ 'x-team': 'billing' }, ['authorization', 'x-session-id']]);
  for (const res of [await h.get(`/v1/endpoints/${ep.id}`), await h.get('/v1/endpoints')]) {
    assert.ok(!res.body.includes(token) && !res.body.includes('s-1'), 'never shown again');
  }
  const stored = JSON.stringify(await queryRows(h, 'SELECT * FROM endpoints'));
  assert.ok(!stored.includes(token) && !stored.includes('billing'), 'no value is stored in clear');
  assert.ok(!h.logText().includes(token), 'nor logged');

  // Changing one header needs no knowledge of the others: they are kept; null removes one.
  h.clock.advance(1000);
  const patched = await h.patch(`/v1/endpoints/${ep.id}`, { body: { headers: { 'x-team': 'payments', 'X-SESSION-ID': null, 'x-region': 'eu' } } });
  assert.equal(patched.statusCode, 200, patched.body);
  const p = patched.json<EndpointBody>();
  assert.deepEqual([p.headers, p.sensitiveHeaders], [{ 'x-team': 'payments', 'x-region': 'eu' }, ['authorization']]);
  assert.ok(!JSON.stringify(await queryRows(h, 'SELECT * FROM endpoints')).includes('payments'));
  const untouched = await h.patch(`/v1/endpoints/${ep.id}`, { body: { description: 'headers untouched' } });
  assert.deepEqual(untouched.json<EndpointBody>().sensitiveHeaders, ['authorization']);
  assertProblem(await h.patch(`/v1/endpoints/${ep.id}`, { body: { headers: { authorization: 5 } } }), 400, 'validation-failed');

  // Write-only headers do not follow the endpoint to another origin unless named again.
  const elsewhere = 'https://93.184.216.35/collect';
  const refused = assertProblem(await h.patch(`/v1/endpoints/${ep.id}`, { body: { url: elsewhere } }), 400, 'validation-failed');
  assert.match(String(refused.detail), /another origin.*\(authorization\)/);
  assert.equal((await h.get(`/v1/endpoints/${ep.id}`)).json<EndpointBody>().url, PUBLIC_URL, 'nothing written');
  const samePlace = await h.patch(`/v1/endpoints/${ep.id}`, { body: { url: `${PUBLIC_URL}/v2` } });
  assert.equal(samePlace.statusCode, 200, 'the same origin keeps them');
  const moved = await h.patch(`/v1/endpoints/${ep.id}`, { body: { url: elsewhere, headers: { authorization: 'Bearer for-the-new-place' } } });
  assert.equal(moved.statusCode, 200, moved.body);
  assert.deepEqual(moved.json<EndpointBody>().sensitiveHeaders, ['authorization']);
});

test('secrets must be whsec_ and the canonical base64 of 24 to 64 bytes', async (t) => {
  const h = await harness(t);
  const bad = [
    'whsec_short',
    'whsec_',
    `whsec_${randomBytes(23).toString('base64')}`,
    `whsec_${randomBytes(65).toString('base64')}`,
    randomBytes(24).toString('base64'),
    `WHSEC_${randomBytes(24).toString('base64')}`,
    `whsec_${randomBytes(24).toString('base64url')}_-`,
    `whsec_${randomBytes(24).toString('base64')}\n`,
    `whsec_${randomBytes(24).toString('base64').slice(0, -1)}`,
  ];
  for (const secret of bad) assertProblem(await h.post('/v1/endpoints', { body: { url: PUBLIC_URL, secret } }), 400, 'validation-failed');
  assert.equal(await storedCount(h), 0);
  for (const bytes of [24, 32, 64]) {
    const secret = `whsec_${randomBytes(bytes).toString('base64')}`;
    assert.equal((await create(h, { url: PUBLIC_URL, secret })).secret, secret);
  }
});

test('SSRF: internal destinations are refused at creation, literal or resolved, and nothing is written', async (t) => {
  const h = await harness(t);
  const cases: [url: string, range: string][] = [
    ['http://127.0.0.1/', 'loopback'],
    ['https://127.0.0.1:8443/hook', 'loopback'],
    ['http://127.1/', 'loopback'],
    ['http://0x7f.1/', 'loopback'],
    ['http://2130706433/', 'loopback'],
    ['http://0177.0.0.1/', 'loopback'],
    ['http://[::1]/', 'loopback'],
    ['http://[0:0:0:0:0:0:0:1]/', 'loopback'],
    ['http://[::ffff:127.0.0.1]/', 'loopback'],
    ['http://[::ffff:7f00:1]/', 'loopback'],
    ['http://10.0.0.1/', 'private'],
    ['http://172.16.5.4/', 'private'],
    ['http://192.168.1.1/admin', 'private'],
    ['http://[::ffff:192.168.1.1]/', 'private'],
    ['http://169.254.169.254/latest/meta-data/iam/', 'linkLocal'],
    ['http://[::ffff:169.254.169.254]/', 'linkLocal'],
    ['http://[fe80::1]/', 'linkLocal'],
    ['http://[fd00:ec2::254]/', 'uniqueLocal'],
    ['http://100.100.100.200/', 'carrierGradeNat'],
    ['http://0.0.0.0/', 'unspecified'],
    ['http://[::]/', 'unspecified'],
    ['http://224.0.0.1/', 'multicast'],
    ['http://[64:ff9b::a00:1]/', 'rfc6052'],
    ['http://[::127.0.0.1]/', 'notGlobalUnicast'],
    ['http://[::a00:1]/', 'notGlobalUnicast'],
    ['http://internal.example/hook', 'private'],
    ['http://metadata.example/', 'linkLocal'],
    ['http://sneaky.example/', 'loopback'],
    ['http://localhost:8080/', 'loopback'],
    ['https://mixed.example/hook', 'private'],
  ];
  for (const [url, range] of cases) {
    const res = await h.post('/v1/endpoints', { body: { url } });
    const problem = assertProblem(res, 400, 'validation-failed');
    assert.match(String(problem.detail), new RegExp(`a ${range} address.*SSRF`), `${url}: ${problem.detail}`);
    assert.match(String(problem.detail), new RegExp(`^body\\.url: ${new URL(url).hostname.replace(/[[\].]/g, '\\$&')} `), 'names the host');
  }
  // A name's detail says it resolves to a refused range, never which address.
  const named = (await h.post('/v1/endpoints', { body: { url: 'https://mixed.example/hook?token=abc' } })).json<{ detail: string }>().detail;
  assert.equal(named, 'body.url: mixed.example resolves to a private address, which the SSRF guard refuses (an operator can allow its range with ssrfAllow)');
  assert.ok(!named.includes('192.168') && !named.includes('token'));
  assert.equal(await storedCount(h), 0, 'nothing written');

  // Moving an endpoint to an internal address is refused the same way, and leaves it where it was.
  const ep = await create(h, { url: 'https://hooks.example.com/hook' });
  for (const [url] of cases.slice(0, 5)) assertProblem(await h.patch(`/v1/endpoints/${ep.id}`, { body: { url } }), 400, 'validation-failed');
  assertProblem(await h.patch(`/v1/endpoints/${ep.id}`, { body: { url: 'http://internal.example/', description: 'moved' } }), 400, 'validation-failed');
  const after = (await h.get(`/v1/endpoints/${ep.id}`)).json<EndpointBody>();
  assert.deepEqual([after.url, after.description], ['https://hooks.example.com/hook', '']);
});

test('SSRF: a name that does not resolve now is accepted (every delivery checks its address again)', async (t) => {
  const h = await harness(t);
  const ep = await create(h, { url: 'https://not-yet.example/hook' });
  assert.equal(ep.url, 'https://not-yet.example/hook');
  assert.match(h.logText(), /"event":"endpoint.url.unresolved".*"host":"not-yet.example".*"reason":"ENOTFOUND"/);
});

test('SSRF: ranges in PORTCULLIS_SSRF_ALLOW are accepted, and only those', async (t) => {
  const h = await harness(t, { env: { PORTCULLIS_SSRF_ALLOW: '127.0.0.0/8,10.0.0.0/8' } });
  for (const url of ['http://127.0.0.1:9000/hook', 'http://127.1/', 'http://[::ffff:127.0.0.1]/', 'http://10.1.2.3/', 'http://internal.example/hook', 'http://sneaky.example/']) {
    await create(h, { url });
  }
  for (const url of ['http://[::1]/', 'http://192.168.1.1/', 'http://169.254.169.254/', 'http://mixed.example/', 'http://localhost/']) {
    assertProblem(await h.post('/v1/endpoints', { body: { url } }), 400, 'validation-failed');
  }
  assert.equal(await storedCount(h), 6);
});

test('a reader sees no secret anywhere and cannot change, reveal or rotate', async (t) => {
  const h = await harness(t);
  const ep = await create(h, { url: PUBLIC_URL });
  const reader = await h.createKey(['endpoints:read']);
  assertProblem(await h.post('/v1/endpoints', { key: reader.secret, body: { url: PUBLIC_URL } }), 403, 'scope-missing');
  assertProblem(await h.patch(`/v1/endpoints/${ep.id}`, { key: reader.secret, body: { description: 'x' } }), 403, 'scope-missing');
  assertProblem(await h.request('DELETE', `/v1/endpoints/${ep.id}`, { key: reader.secret }), 403, 'scope-missing');
  assertProblem(await h.post(`/v1/endpoints/${ep.id}/reveal-secret`, { key: reader.secret }), 403, 'scope-missing');
  assertProblem(await h.post(`/v1/endpoints/${ep.id}/rotate-secret`, { key: reader.secret }), 403, 'scope-missing');
  assertProblem(await h.get('/v1/endpoints', { key: null }), 401, 'unauthorized');
  const sourcesOnly = await h.createKey(['sources:write']);
  assertProblem(await h.post(`/v1/endpoints/${ep.id}/reveal-secret`, { key: sourcesOnly.secret }), 403, 'scope-missing');
  for (const res of [await h.get('/v1/endpoints', { key: reader.secret }), await h.get(`/v1/endpoints/${ep.id}`, { key: reader.secret })]) {
    assert.equal(res.statusCode, 200);
    assert.ok(!res.body.includes(ep.secret!.slice(6)));
  }
  assert.equal(await storedCount(h), 1);
});
