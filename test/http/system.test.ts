import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import { PROBLEMS } from '../../src/core/problems.ts';
import { isKnownScope } from '../../src/core/scopes.ts';
import { assertProblem, runAuthSuite } from '../harness/authSuite.ts';
import { TEST_DATABASE_URL, TEST_ENGINE } from '../harness/engine.ts';
import { startHarness } from '../harness/startHarness.ts';
import type { Harness } from '../harness/startHarness.ts';
import { startTcpProxy } from '../harness/tcpProxy.ts';

const REQUEST_ID = /^req_[0-9a-z]{26}$/;

interface Outage {
  h: Harness;
  /** Makes the store unreachable for this app only. */
  cut(): Promise<void>;
  /** Brings it back, where the engine allows (a closed SQLite handle stays closed). */
  restore: (() => void) | null;
}

/**
 * An app whose store can go away. SQLite: close the handle. PostgreSQL: the app
 * reaches the shared server through a loopback proxy the test cuts, so the
 * server itself is never stopped.
 */
async function harnessWithOutage(t: TestContext): Promise<Outage> {
  if (TEST_ENGINE === 'sqlite') {
    const h = await startHarness(t);
    return { h, cut: () => h.services.store.close(), restore: null };
  }
  const direct = new URL(TEST_DATABASE_URL!);
  const proxy = await startTcpProxy({ host: direct.hostname, port: Number(direct.port || 5432) });
  t.after(() => proxy.close());
  const h = await startHarness(t, { env: { PORTCULLIS_DATABASE_URL: proxy.via(TEST_DATABASE_URL!) } });
  assert.ok(proxy.connections > 0, 'the app reaches PostgreSQL through the proxy');
  return {
    h,
    cut: async () => proxy.cut(),
    restore: () => proxy.restore(),
  };
}

/** Fastify's route table as `METHOD /path` lines, HEAD left out, `:id` written `{id}`. */
function registeredRoutes(h: Harness): string[] {
  const out: string[] = [];
  const stack: string[] = [];
  for (const line of h.app.printRoutes({ commonPrefix: false }).split('\n')) {
    const m = /^((?:│ {3}| {4})*)(?:├── |└── )(\S+)(?: \(([^)]+)\))?$/.exec(line);
    if (!m) continue;
    const depth = m[1]!.length / 4;
    stack.length = depth;
    stack.push(m[2]!);
    const path = stack.join('').replace(/:(\w+)/g, '{$1}');
    for (const method of (m[3] ?? '').split(', ').filter((x) => x && x !== 'HEAD')) out.push(`${method} ${path}`);
  }
  return out.sort();
}

test('/healthz answers 200 without a key', async (t) => {
  const h = await startHarness(t);
  const res = await h.get('/healthz', { key: null });
  assert.equal(res.statusCode, 200);
  assert.deepEqual(res.json(), { status: 'ok' });
});

test('/readyz answers 200 with the store check when the store is reachable and migrated', async (t) => {
  const h = await startHarness(t);
  const res = await h.get('/readyz', { key: null });
  assert.equal(res.statusCode, 200);
  assert.deepEqual(res.json(), { status: 'ready', checks: { store: 'ok' } });
});

test('/readyz answers 503 naming the store check when the store is unreachable, while /healthz stays 200', async (t) => {
  const { h, cut } = await harnessWithOutage(t);
  assert.equal((await h.get('/readyz', { key: null })).statusCode, 200);
  await cut();
  const res = await h.get('/readyz', { key: null });
  assert.equal(res.statusCode, 503);
  assert.deepEqual(res.json(), { status: 'unavailable', checks: { store: 'unreachable' } });
  assert.equal((await h.get('/healthz', { key: null })).statusCode, 200);
});

test('a /v1 request while the store is down is a 503 store-unavailable with Retry-After, and the process keeps serving', async (t) => {
  const { h, cut, restore } = await harnessWithOutage(t);
  const reader = await h.createKey(['keys:read']);
  assert.equal((await h.get('/v1/keys', { key: reader.secret })).statusCode, 200);
  await cut();

  // A key verified a moment ago, a key that must be looked up, a write, and a write with an Idempotency-Key.
  const cached = await h.get('/v1/keys', { key: reader.secret });
  h.clock.advance(1000);
  const lookedUp = await h.get('/v1/keys', { key: h.adminKey });
  const write = await h.post('/v1/keys', { body: { name: 'during-outage', scopes: ['keys:read'] } });
  const idempotent = await h.post('/v1/keys', { body: { name: 'during-outage', scopes: ['keys:read'] }, headers: { 'idempotency-key': 'outage' } });
  for (const res of [cached, lookedUp, write, idempotent]) {
    const problem = assertProblem(res, 503, 'store-unavailable');
    assert.ok(Number(res.headers['retry-after']) > 0, 'Retry-After is a number of seconds');
    assert.equal(problem.requestId, res.headers['x-request-id']);
    assert.doesNotMatch(String(problem.detail), /postgres|sqlite|127\.0\.0\.1|ECONN/i);
  }
  assert.match(h.logText(), /store unavailable/);
  assert.equal((await h.get('/healthz', { key: null })).statusCode, 200);
  assertProblem(await h.get(`/v1/keys/key_01jdx3m5a8q2v7k4r9t6w1y3zb`), 503, 'store-unavailable');

  if (restore) {
    restore();
    assert.equal((await h.get('/readyz', { key: null })).statusCode, 200);
    assert.equal((await h.get('/v1/keys', { key: reader.secret })).statusCode, 200);
    const created = await h.post('/v1/keys', { body: { name: 'after-outage', scopes: ['keys:read'] }, headers: { 'idempotency-key': 'outage' } });
    assert.equal(created.statusCode, 201, created.body);
    const names = (await h.get('/v1/keys')).json<{ data: { name: string }[] }>().data.map((k) => k.name);
    assert.ok(!names.includes('during-outage'), 'nothing was written during the outage');
    assert.ok(names.includes('after-outage'));
  }
});

test(
  'on PostgreSQL, a query to a server gone silent fails after the statement timeout plus 3 s with 503, and the process serves again once the network answers',
  { skip: TEST_ENGINE !== 'postgres' && 'SQLite has no server to go silent' },
  async (t) => {
    const direct = new URL(TEST_DATABASE_URL!);
    const proxy = await startTcpProxy({ host: direct.hostname, port: Number(direct.port || 5432) });
    t.after(() => proxy.close());
    const h = await startHarness(t, { env: { PORTCULLIS_DATABASE_URL: proxy.via(TEST_DATABASE_URL!), PORTCULLIS_DATABASE_STATEMENT_TIMEOUT_MS: '500' } });
    // Idle connections in the pool, so the queries go out on open ones (a new connection would meet the connect timeout instead).
    await Promise.all(Array.from({ length: 10 }, () => h.get('/v1/keys?limit=1')));

    proxy.stall();
    const started = Date.now();
    const [read, write] = await Promise.all([h.get('/v1/keys?limit=1'), h.post('/v1/endpoints', { body: { url: 'https://hooks.example.com/' } })]);
    const waited = Date.now() - started;
    assertProblem(read, 503, 'store-unavailable');
    assertProblem(write, 503, 'store-unavailable');
    assert.ok(waited >= 3000 && waited < 20_000, `gave up after ${waited} ms`);

    proxy.restore();
    assert.equal((await h.get('/v1/keys?limit=1')).statusCode, 200);
    assert.equal((await h.post('/v1/endpoints', { body: { url: 'https://hooks.example.com/' } })).statusCode, 201);
  },
);

runAuthSuite({ method: 'GET', url: '/metrics', scope: 'metrics:read' });

test('/metrics counts requests by route template and status, with a latency histogram', async (t) => {
  const h = await startHarness(t);
  const key = await h.createKey(['keys:read']);
  for (let i = 0; i < 3; i++) assert.equal((await h.get('/v1/keys', { key: key.secret })).statusCode, 200);
  assert.equal((await h.get('/v1/keys/key_01jdx3m5a8q2v7k4r9t6w1y3zb', { key: key.secret })).statusCode, 404);
  assert.equal((await h.get('/v1/nowhere/key_01jdx3m5a8q2v7k4r9t6w1y3zb')).statusCode, 404);
  assert.equal((await h.get('/v1/keys', { key: null })).statusCode, 401);

  assertProblem(await h.get('/metrics', { key: key.secret }), 403, 'scope-missing');
  const metricsKey = await h.createKey(['metrics:read']);
  const res = await h.get('/metrics', { key: metricsKey.secret });
  assert.equal(res.statusCode, 200);
  assert.match(String(res.headers['content-type']), /^text\/plain/);
  const text = res.body;
  const sample = (name: string, labels: string): number | null => {
    const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}} `));
    return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : null;
  };
  assert.match(text, /# TYPE portcullis_http_requests_total counter/);
  assert.equal(sample('portcullis_http_requests_total', 'method="GET",route="/v1/keys",status="200"'), 3);
  assert.equal(sample('portcullis_http_requests_total', 'method="GET",route="/v1/keys",status="401"'), 1);
  assert.equal(sample('portcullis_http_requests_total', 'method="GET",route="/v1/keys/:id",status="404"'), 1);
  assert.equal(sample('portcullis_http_requests_total', 'method="GET",route="unmatched",status="404"'), 1);
  assert.equal(sample('portcullis_http_requests_total', 'method="GET",route="/metrics",status="403"'), 1);

  assert.match(text, /# TYPE portcullis_http_request_duration_seconds histogram/);
  assert.equal(sample('portcullis_http_request_duration_seconds_count', 'method="GET",route="/v1/keys",status="200"'), 3);
  assert.equal(sample('portcullis_http_request_duration_seconds_bucket', 'le="+Inf",method="GET",route="/v1/keys",status="200"'), 3);
  assert.ok((sample('portcullis_http_request_duration_seconds_sum', 'method="GET",route="/v1/keys",status="200"') ?? -1) > 0);
  // Ids and raw paths never become label values: one series per route, not per resource.
  assert.ok(!text.includes('key_01jdx3m5a8q2v7k4r9t6w1y3zb'));
  assert.ok(!text.includes('/v1/nowhere'));
  // Every metric is ours.
  for (const line of text.split('\n').filter((l) => l && !l.startsWith('#'))) assert.match(line, /^portcullis_/);
});

test('/openapi.json is OpenAPI 3.1 and documents every /v1 route with its scope, schemas, errors and a curl example', async (t) => {
  const h = await startHarness(t);
  const res = await h.get('/openapi.json', { key: null });
  assert.equal(res.statusCode, 200);
  const spec = res.json();
  assert.equal(spec.openapi, '3.1.0');
  assert.deepEqual(spec.components.securitySchemes.apiKey, { type: 'http', scheme: 'bearer', description: spec.components.securitySchemes.apiKey.description });

  interface Operation {
    security?: unknown;
    'x-required-scope'?: string;
    description?: string;
    requestBody?: { content: Record<string, { schema: { additionalProperties?: unknown } }> };
    parameters?: { in: string; name: string }[];
    responses: Record<string, { content?: Record<string, { schema?: { properties?: Record<string, unknown> } }> }>;
  }
  const operations = new Map<string, Operation>();
  for (const [path, methods] of Object.entries(spec.paths as Record<string, Record<string, Operation>>)) {
    for (const [method, op] of Object.entries(methods)) operations.set(`${method.toUpperCase()} ${path}`, op);
  }

  // Every /v1 route Fastify serves is in the document, and nothing else under /v1.
  const served = registeredRoutes(h).filter((r) => r.split(' ')[1]!.startsWith('/v1/'));
  assert.ok(served.length >= 6, served.join('\n'));
  assert.deepEqual([...operations.keys()].filter((r) => r.split(' ')[1]!.startsWith('/v1/')).sort(), served);

  const expected: Record<string, { scope: string; success: string; body?: boolean }> = {
    'POST /v1/keys': { scope: 'keys:write', success: '201', body: true },
    'GET /v1/keys': { scope: 'keys:read', success: '200' },
    'GET /v1/keys/{id}': { scope: 'keys:read', success: '200' },
    'PATCH /v1/keys/{id}': { scope: 'keys:write', success: '200', body: true },
    'POST /v1/keys/{id}/revoke': { scope: 'keys:write', success: '200' },
    'POST /v1/keys/{id}/rotate': { scope: 'keys:write', success: '200', body: true },
  };
  for (const [route, want] of Object.entries(expected)) {
    const op = operations.get(route);
    assert.ok(op, `${route} is documented`);
    assert.equal(op['x-required-scope'], want.scope, route);
    assert.ok(op.responses[want.success]?.content?.['application/json']?.schema?.properties, `${route} documents its ${want.success} body`);
    if (want.body) {
      const schema = op.requestBody?.content['application/json']?.schema;
      assert.ok(schema, `${route} documents its request body`);
      assert.equal(schema.additionalProperties, false, `${route} says unknown fields are refused`);
      for (const status of ['400', '413', '415']) assert.ok(op.responses[status], `${route} documents ${status}`);
    }
    if (route.startsWith('POST')) {
      assert.ok(op.parameters?.some((p) => p.in === 'header' && p.name === 'idempotency-key'), `${route} documents Idempotency-Key`);
      assert.ok(op.responses['409'] && op.responses['422'], `${route} documents the idempotency conflicts`);
    }
    if (route.includes('{id}')) assert.ok(op.responses['404'], `${route} documents 404`);
  }
  assert.ok(operations.get('GET /v1/keys')!.parameters?.some((p) => p.in === 'query' && p.name === 'cursor'));

  // What every authenticated operation carries, /metrics included.
  for (const [route, op] of operations) {
    if (!route.includes(' /v1/') && route !== 'GET /metrics') continue;
    assert.deepEqual(op.security, [{ apiKey: [] }], route);
    const scope = op['x-required-scope'];
    assert.ok(scope && isKnownScope(scope), `${route} names a known scope`);
    const description = op.description ?? '';
    assert.equal(description.split(`Requires scope \`${scope}\``).length, 2, `${route} states its scope exactly once`);
    const [method, path] = route.split(' ');
    const curlPath = path!.replace(/\{[^}]+\}/g, '[^/" ?]+');
    assert.match(description, new RegExp(`curl -X ${method} "\\$PORTCULLIS_URL${curlPath}`), `${route} has a curl example`);
    assert.match(description, /Authorization: Bearer \$PORTCULLIS_API_KEY/, route);
    for (const status of ['401', '403', '503']) {
      const problem = op.responses[status]?.content?.['application/problem+json']?.schema;
      assert.ok(problem?.properties?.type && problem.properties.requestId, `${route} documents ${status} as a problem`);
    }
  }
  // Public routes say they need nothing.
  for (const route of ['GET /healthz', 'GET /readyz']) {
    assert.ok(operations.get(route), route);
    assert.equal(operations.get(route)!.security, undefined, route);
  }
});

test('/docs serves the API reference as HTML that loads nothing from another host', async (t) => {
  const h = await startHarness(t);
  const page = await h.get('/docs', { key: null });
  assert.equal(page.statusCode, 200);
  assert.match(String(page.headers['content-type']), /^text\/html/);
  const csp = String(page.headers['content-security-policy']);
  assert.doesNotMatch(csp, /https?:|\.(io|com|net|org)\b/, 'the page policy allows no other host');

  const assets = [...page.body.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);
  assert.ok(assets.some((a) => a.endsWith('swagger-initializer.js')), page.body);
  const initializer = await h.get(assets.find((a) => a.endsWith('swagger-initializer.js'))!, { key: null });
  assert.equal(initializer.statusCode, 200);

  for (const [name, text] of [['the page', page.body], ['the initializer', initializer.body]] as const) {
    // URLs in comments are references for readers, not loads.
    const code = text
      .split('\n')
      .filter((line) => !line.trim().startsWith('//'))
      .join('\n');
    assert.doesNotMatch(code, /(?:https?:)?\/\/[a-z0-9.-]+\.[a-z]{2,}\//i, `${name} references another host`);
  }
  assert.match(initializer.body, /validatorUrl: null/, 'the validator badge, which calls an outside host, is off');
  // Every asset the page names is served here.
  for (const asset of assets) {
    assert.ok(asset.startsWith('/docs/'), asset);
    assert.equal((await h.get(asset, { key: null })).statusCode, 200, asset);
  }
  // The initializer points the UI at this server's own document.
  assert.match(initializer.body, /resolveUrl\('\.\/json'\)/);
  assert.equal((await h.get('/docs/json', { key: null })).statusCode, 200);
});

test('/docs/problems has an anchor for every problem code', async (t) => {
  const h = await startHarness(t);
  const res = await h.get('/docs/problems', { key: null });
  assert.equal(res.statusCode, 200);
  assert.match(String(res.headers['content-type']), /^text\/html/);
  for (const [code, entry] of Object.entries(PROBLEMS)) {
    assert.ok(res.body.includes(`id="${code}"`), `anchor for ${code}`);
    assert.ok(res.body.includes(`HTTP ${entry.status}`), `status of ${code}`);
  }
});

test('every problem has type /docs/problems#<code>, a documented code, and the request id of its response', async (t) => {
  const h = await startHarness(t);
  const reader = await h.createKey(['keys:read']);
  const revoked = await h.createKey(['keys:read']);
  await h.revokeKey(revoked.id);
  await h.post('/v1/keys', { body: { name: 'a', scopes: ['keys:read'] }, headers: { 'idempotency-key': 'i' } });
  const json = { 'content-type': 'application/json' };
  const responses = [
    await h.get('/v1/keys', { key: null }),
    await h.post('/v1/keys', { key: reader.secret, body: { name: 'x', scopes: ['keys:read'] } }),
    await h.get('/v1/keys/key_01jdx3m5a8q2v7k4r9t6w1y3zb'),
    await h.get('/nowhere'),
    await h.get('/v1/keys?limit=0'),
    await h.get('/v1/keys?cursor=bogus'),
    await h.post('/v1/keys', { payload: '{', headers: json }),
    await h.post('/v1/keys', { payload: 'x', headers: { 'content-type': 'text/plain' } }),
    await h.post('/v1/keys', { payload: `"${'x'.repeat(1024 * 1024)}"`, headers: json }),
    await h.post(`/v1/keys/${revoked.id}/rotate`),
    await h.post('/v1/keys', { body: { name: 'a', scopes: ['keys:read'] }, headers: { 'idempotency-key': 'i' } }),
    await h.post('/v1/keys', { body: { name: 'b', scopes: ['keys:read'] }, headers: { 'idempotency-key': 'i' } }),
    await h.get(`/v1/keys/${'k'.repeat(101)}`),
    await h.get('/v1/keys/%zz'),
  ];
  const page = (await h.get('/docs/problems', { key: null })).body;
  const seen = new Set<string>();
  for (const res of responses) {
    assert.ok(res.statusCode >= 400, res.body);
    assert.match(String(res.headers['content-type']), /^application\/problem\+json/, res.body);
    const body = res.json<Record<string, unknown>>();
    const code = String(body.code);
    assert.ok(code in PROBLEMS, code);
    assert.equal(body.type, `/docs/problems#${code}`);
    assert.equal(body.status, res.statusCode);
    assert.equal(body.title, PROBLEMS[code as keyof typeof PROBLEMS].title);
    assert.equal(typeof body.detail, 'string');
    assert.match(String(res.headers['x-request-id']), REQUEST_ID, res.body);
    assert.equal(body.requestId, res.headers['x-request-id']);
    assert.ok(page.includes(`id="${code}"`));
    seen.add(code);
  }
  assert.deepEqual(
    [...seen].sort(),
    ['conflict', 'idempotency-mismatch', 'idempotency-secret-not-replayed', 'invalid-cursor', 'malformed-request', 'not-found', 'payload-too-large', 'scope-missing', 'unauthorized', 'unsupported-media-type', 'validation-failed'],
  );
});

test('every response carries a fresh X-Request-Id, and a client cannot choose it', async (t) => {
  const h = await startHarness(t);
  const responses = [
    await h.get('/healthz', { key: null }),
    await h.get('/v1/keys'),
    await h.get('/docs', { key: null }),
    await h.get('/v1/keys', { key: null, headers: { 'x-request-id': 'chosen-by-client' } }),
    await h.get('/nowhere', { headers: { 'x-request-id': 'chosen-by-client' } }),
  ];
  const ids = responses.map((r) => String(r.headers['x-request-id']));
  for (const id of ids) assert.match(id, REQUEST_ID);
  assert.equal(new Set(ids).size, ids.length);
  assert.ok(!h.logText().includes('chosen-by-client'));
});

test('each request writes one log line with its request id, route, status, duration and key id, never the key', async (t) => {
  const h = await startHarness(t);
  const key = await h.createKey(['keys:read']);
  const ok = await h.get('/v1/keys/key_01jdx3m5a8q2v7k4r9t6w1y3zb?x=1', { key: key.secret });
  const anonymous = await h.get('/v1/keys', { key: null });
  const tooLong = await h.get(`/v1/keys/${'k'.repeat(101)}`);

  const lines = h
    .logText()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  const linesFor = (res: { headers: Record<string, unknown> }) => lines.filter((l) => l.requestId === res.headers['x-request-id'] && l.msg === 'request');

  const [line, ...extra] = linesFor(ok);
  assert.equal(extra.length, 0, 'one line per request');
  assert.ok(line);
  assert.equal(line.route, '/v1/keys/:id');
  assert.equal(line.method, 'GET');
  assert.equal(line.status, 404);
  assert.equal(typeof line.durationMs, 'number');
  assert.ok((line.durationMs as number) >= 0);
  assert.equal(line.keyId, key.id);
  assert.ok(!String(line.path).includes('?'), 'the query string is not logged');

  const [anon] = linesFor(anonymous);
  assert.equal(anon?.status, 401);
  assert.equal(anon?.keyId, undefined);
  assert.equal(linesFor(tooLong).length, 1, 'a request the router refuses is logged too');

  assert.ok(!h.logText().includes(key.secret.slice(4)));
  assert.ok(!h.logText().includes(h.adminKey.slice(4)));
});
