import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createServer, request as httpRequest } from 'node:http';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { createServer as createTcpServer } from 'node:net';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import { loadConfig, redactConfig } from '../../src/config/load.ts';
import { assertProblem } from '../harness/authSuite.ts';
import { startHarness } from '../harness/startHarness.ts';
import type { Harness } from '../harness/startHarness.ts';

interface Seen {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

interface Upstream {
  url: string;
  seen: Seen[];
}

async function upstream(t: TestContext, handler?: (req: IncomingMessage, res: ServerResponse, seen: Seen[]) => void): Promise<Upstream> {
  const seen: Seen[] = [];
  const server = createServer((req, res) => {
    if (handler) return handler(req, res, seen);
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      seen.push({ method: req.method!, url: req.url!, headers: req.headers, body: Buffer.concat(chunks) });
      res.writeHead(201, { 'content-type': 'application/json', 'x-upstream': 'yes', connection: 'keep-alive, x-hop', 'x-hop': 'drop me', 'keep-alive': 'timeout=5' });
      res.end(JSON.stringify({ ok: true, path: req.url }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen };
}

function withProxy(t: TestContext, routes: Record<string, unknown>[], env: Record<string, string> = {}): Promise<Harness> {
  return startHarness(t, { env: { PORTCULLIS_PROXY: JSON.stringify({ routes }), ...env } });
}

test('a proxied request reaches the upstream with the caller identity, without the caller key, hop-by-hop headers or spoofed identity', async (t) => {
  const up = await upstream(t);
  const h = await withProxy(t, [{ prefix: '/api/', upstream: `${up.url}/base`, scope: 'api:read', credential: { header: 'authorization', env: 'UPSTREAM_TOKEN' } }], {
    UPSTREAM_TOKEN: 'Bearer upstream-secret',
  });
  const key = await h.createKey(['api:read']);
  const res = await h.get('/api/things/1?filter=a%20b', {
    key: key.secret,
    headers: { 'x-portcullis-key-id': 'key_spoofed', 'x-portcullis-scopes': 'admin', 'x-forwarded-for': '203.0.113.7', connection: 'x-client-hop', 'x-client-hop': 'drop', 'x-custom': 'kept' },
  });
  assert.equal(res.statusCode, 201, res.body);
  assert.deepEqual(res.json(), { ok: true, path: '/base/things/1?filter=a%20b' });
  assert.equal(res.headers['x-upstream'], 'yes');
  assert.equal(res.headers['x-hop'], undefined, 'headers the upstream named in Connection are not passed back');
  assert.equal(res.headers['keep-alive'], undefined);
  assert.match(String(res.headers['x-request-id']), /^req_/);

  const seen = up.seen[0]!;
  assert.equal(seen.url, '/base/things/1?filter=a%20b');
  assert.equal(seen.headers.authorization, 'Bearer upstream-secret', 'the configured upstream credential, not the caller key');
  assert.ok(!JSON.stringify(seen.headers).includes(key.secret), 'the caller key is not forwarded');
  assert.equal(seen.headers['x-portcullis-key-id'], key.id);
  assert.equal(seen.headers['x-portcullis-scopes'], 'api:read');
  assert.equal(seen.headers['x-forwarded-for'], '127.0.0.1', 'a client-sent X-Forwarded-For is not trusted');
  assert.equal(seen.headers['x-forwarded-proto'], 'http');
  assert.equal(seen.headers['x-client-hop'], undefined);
  assert.equal(seen.headers['x-custom'], 'kept');
  assert.equal(seen.headers['x-request-id'], res.headers['x-request-id']);
  assert.ok(!h.logText().includes('upstream-secret'));
});

test('keys and scopes are enforced before anything reaches the upstream; writes may need their own scope', async (t) => {
  const up = await upstream(t);
  const h = await withProxy(t, [{ prefix: '/api/', upstream: up.url, scope: 'api:read', writeScope: 'api:write' }]);
  const reader = await h.createKey(['api:read']);
  const writer = await h.createKey(['api:write']);
  const other = await h.createKey(['keys:read']);
  assertProblem(await h.get('/api/x', { key: null }), 401, 'unauthorized');
  assertProblem(await h.get('/api/x', { key: other.secret }), 403, 'scope-missing');
  assertProblem(await h.post('/api/x', { key: reader.secret, body: { a: 1 } }), 403, 'scope-missing');
  assert.equal(up.seen.length, 0);
  assert.equal((await h.get('/api/x', { key: writer.secret })).statusCode, 201, 'write holds read');
  const posted = await h.post('/api/x', { key: writer.secret, body: { a: 1 } });
  assert.equal(posted.statusCode, 201);
  assert.deepEqual(JSON.parse(up.seen[1]!.body.toString()), { a: 1 });
  assert.equal(up.seen[1]!.headers['content-type'], 'application/json');
  // Bodies of any type pass through untouched.
  await h.post('/api/x', { key: writer.secret, payload: '<xml/>', headers: { 'content-type': 'application/xml' } });
  assert.equal(up.seen[2]!.body.toString(), '<xml/>');
});

test('proxy routes declare scopes keys can be given; unknown scopes are refused', async (t) => {
  const up = await upstream(t);
  const h = await withProxy(t, [{ prefix: '/api/', upstream: up.url, scope: 'reports:read' }]);
  assert.equal((await h.post('/v1/keys', { body: { name: 'r', scopes: ['reports:read'] } })).statusCode, 201);
  assert.equal((await h.post('/v1/keys', { body: { name: 'w', scopes: ['reports:write'] } })).statusCode, 201);
  const bogus = await h.post('/v1/keys', { body: { name: 'b', scopes: ['bogus:read'] } });
  assertProblem(bogus, 400, 'validation-failed');
  assert.match(bogus.json().detail, /bogus:read/);
});

test('proxied requests are rate-limited, metered with the route cost, and counted against quotas', async (t) => {
  const up = await upstream(t);
  const h = await withProxy(t, [{ prefix: '/api/', upstream: up.url, scope: 'api:read', rateLimit: 'three', cost: 5 }], {
    PORTCULLIS_RATE_LIMITS: JSON.stringify({ policies: { three: { limit: 3, window: 60 } } }),
  });
  const key = await h.createKey(['api:read'], { quota: { limit: 100 } });
  for (let i = 0; i < 3; i++) {
    const res = await h.get('/api/x', { key: key.secret });
    assert.equal(res.statusCode, 201);
    assert.equal(res.headers['ratelimit-policy'], '"three";q=3;w=60');
  }
  const limited = await h.get('/api/x', { key: key.secret });
  assertProblem(limited, 429, 'rate-limited');
  assert.equal(up.seen.length, 3);
  const usage = (await h.get(`/v1/usage?keyId=${key.id}`)).json<{ data: { route: string; requests: number; units: number }[] }>().data;
  assert.deepEqual(
    usage.map((r) => [r.route, r.requests, r.units]),
    [['GET /api/*', 3, 15]],
  );
});

test('an upstream that hangs is a 504 after the route timeout, counted, and the proxy keeps serving', async (t) => {
  const hung = await upstream(t, () => undefined);
  const h = await withProxy(t, [{ prefix: '/slow/', upstream: hung.url, scope: 'api:read', responseTimeoutMs: 300 }]);
  const key = await h.createKey(['api:read']);
  const started = Date.now();
  assertProblem(await h.get('/slow/x', { key: key.secret }), 504, 'upstream-timeout');
  assert.ok(Date.now() - started < 3000);
  assert.match((await h.get('/metrics')).body, /portcullis_proxy_errors_total\{route="\/slow\/",kind="upstream-timeout"\} 1/);
  assert.equal((await h.get('/healthz', { key: null })).statusCode, 200);
});

test('an upstream that accepts but never completes the connection (TLS handshake) is a 504 after the route connect timeout', async (t) => {
  // Accepts TCP and stays silent: the TLS handshake, part of connecting, never ends.
  const sockets = new Set<Socket>();
  const silent = createTcpServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    for (const socket of sockets) socket.destroy();
    return new Promise<void>((resolve) => silent.close(() => resolve()));
  });
  const port = (silent.address() as AddressInfo).port;
  const h = await withProxy(t, [{ prefix: '/tls/', upstream: `https://127.0.0.1:${port}`, scope: 'api:read', connectTimeoutMs: 300, responseTimeoutMs: 60_000 }]);
  const key = await h.createKey(['api:read']);
  const started = Date.now();
  const res = await h.get('/tls/x', { key: key.secret });
  assertProblem(res, 504, 'upstream-timeout');
  assert.ok(Date.now() - started < 3000, 'the route connect timeout (300 ms) answered, not the default (5 s) nor the response timeout');
  assert.doesNotMatch(res.body, /127\.0\.0\.1/);
  assert.match((await h.get('/metrics')).body, /portcullis_proxy_errors_total\{route="\/tls\/",kind="upstream-timeout"\} 1/);
});

test('an upstream that refuses connections is a 502 problem', async (t) => {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const port = (probe.address() as AddressInfo).port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  const h = await withProxy(t, [{ prefix: '/api/', upstream: `http://127.0.0.1:${port}`, scope: 'api:read' }]);
  const key = await h.createKey(['api:read']);
  const res = await h.get('/api/x', { key: key.secret });
  assertProblem(res, 502, 'upstream-unavailable');
  assert.doesNotMatch(res.body, /127\.0\.0\.1|ECONNREFUSED/);
});

/** A raw HTTP request over a real socket, so bodies can be streamed in pieces. */
function rawRequest(base: string, path: string, init: { method: string; headers: Record<string, string> }): { req: ReturnType<typeof httpRequest>; response: Promise<IncomingMessage> } {
  let req!: ReturnType<typeof httpRequest>;
  const response = new Promise<IncomingMessage>((resolve, reject) => {
    req = httpRequest(`${base}${path}`, { method: init.method, headers: init.headers, agent: false }, resolve);
    req.on('error', reject);
  });
  return { req, response };
}

test('request and response bodies stream through without being buffered', async (t) => {
  let firstChunkSeen!: () => void;
  const firstChunk = new Promise<void>((resolve) => (firstChunkSeen = resolve));
  let releaseResponse!: () => void;
  const responseGate = new Promise<void>((resolve) => (releaseResponse = resolve));
  const hash = createHash('sha256');
  let received = 0;
  const up = await upstream(t, (req, res) => {
    req.on('data', (c: Buffer) => {
      if (received === 0) firstChunkSeen();
      received += c.length;
      hash.update(c);
    });
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      res.write('first part;');
      void responseGate.then(() => res.end('second part'));
    });
  });
  const h = await withProxy(t, [{ prefix: '/api/', upstream: up.url, scope: 'api:write' }]);
  const key = await h.createKey(['api:write']);
  const base = await h.listen();

  const { req, response } = rawRequest(base, '/api/upload', { method: 'POST', headers: { authorization: `Bearer ${key.secret}`, 'content-type': 'application/octet-stream', 'transfer-encoding': 'chunked' } });
  const part = randomBytes(64 * 1024);
  const sent = createHash('sha256');
  req.write(part);
  sent.update(part);
  // The upstream sees the first chunk while the client has not finished sending: no buffering.
  await firstChunk;
  for (let i = 0; i < 40; i++) {
    const more = randomBytes(64 * 1024);
    req.write(more);
    sent.update(more);
  }
  req.end();
  const res = await response;
  assert.equal(res.statusCode, 200);
  // The client reads the first part while the upstream still holds the rest back.
  const first = await new Promise<string>((resolve) => res.once('data', (c: Buffer) => resolve(c.toString())));
  assert.equal(first, 'first part;');
  releaseResponse();
  let rest = '';
  for await (const c of res) rest += (c as Buffer).toString();
  assert.equal(rest, 'second part');
  assert.equal(received, 41 * 64 * 1024);
  assert.equal(hash.digest('hex'), sent.digest('hex'));
});

test('a body over the route limit is a 413 and the upstream gets nothing whole', async (t) => {
  const up = await upstream(t);
  const h = await withProxy(t, [{ prefix: '/api/', upstream: up.url, scope: 'api:write', bodyLimit: 1000 }]);
  const key = await h.createKey(['api:write']);
  assertProblem(await h.post('/api/x', { key: key.secret, payload: 'x'.repeat(2000), headers: { 'content-type': 'text/plain' } }), 413, 'payload-too-large');
  assert.equal(up.seen.length, 0);
  const base = await h.listen();
  // Without a Content-Length the limit is enforced while streaming.
  const { req, response } = rawRequest(base, '/api/x', { method: 'POST', headers: { authorization: `Bearer ${key.secret}`, 'content-type': 'text/plain', 'transfer-encoding': 'chunked' } });
  req.end('y'.repeat(5000));
  const res = await response;
  assert.equal(res.statusCode, 413);
  res.resume();
  assert.equal(up.seen.filter((s) => s.body.length > 1000).length, 0);
});

test('an upstream that closes mid-body cuts the client response, and the proxy keeps serving', async (t) => {
  const up = await upstream(t, (req, res) => {
    if (req.url === '/ok') return void res.end('fine');
    res.writeHead(200, { 'content-length': '1000' });
    res.write('partial');
    setTimeout(() => res.socket?.destroy(), 20);
  });
  const h = await withProxy(t, [{ prefix: '/api/', upstream: up.url, scope: 'api:read' }]);
  const key = await h.createKey(['api:read']);
  const base = await h.listen();
  const { req, response } = rawRequest(base, '/api/cut', { method: 'GET', headers: { authorization: `Bearer ${key.secret}` } });
  req.end();
  const res = await response;
  assert.equal(res.statusCode, 200);
  await assert.rejects(
    (async () => {
      for await (const _ of res) void _;
    })(),
  );
  assert.equal((await h.get('/api/ok', { key: key.secret })).body, 'fine');
});

test('proxy routes cannot shadow the API, share a prefix, or name unknown policies; credentials are never printed', () => {
  const load = (routes: unknown[], env: Record<string, string> = {}) => loadConfig({ env: { PORTCULLIS_PROXY: JSON.stringify({ routes }), ...env } });
  assert.throws(() => load([{ prefix: '/v1/', upstream: 'http://127.0.0.1:1', scope: 'api:read' }]), /proxy\.routes\[0\]\.prefix: overlaps/);
  assert.throws(() => load([{ prefix: '/in/x/', upstream: 'http://127.0.0.1:1', scope: 'api:read' }]), /overlaps/);
  assert.throws(
    () => load([
      { prefix: '/api/', upstream: 'http://127.0.0.1:1', scope: 'api:read' },
      { prefix: '/api/', upstream: 'http://127.0.0.1:2', scope: 'api:read' },
    ]),
    /same prefix/,
  );
  assert.throws(() => load([{ prefix: '/api/', upstream: 'http://127.0.0.1:1', scope: 'api:read', rateLimit: 'nope' }]), /no policy named nope/);
  assert.throws(() => load([{ prefix: '/api/', upstream: 'ftp://x', scope: 'api:read' }]), /proxy/);
  assert.throws(() => load([{ prefix: '/api/', upstream: 'http://127.0.0.1:1', scope: 'api:read', credential: { header: 'authorization', env: 'MISSING_TOKEN' } }]), /MISSING_TOKEN/);

  const config = load([{ prefix: '/api/', upstream: 'http://127.0.0.1:1', scope: 'api:read', credential: { header: 'authorization', env: 'UPSTREAM_TOKEN' } }], { UPSTREAM_TOKEN: 'Bearer s3cret-upstream' });
  assert.equal(config.proxy.routes[0]!.credential!.value, 'Bearer s3cret-upstream');
  const printed = JSON.stringify(redactConfig(config));
  assert.ok(!printed.includes('s3cret-upstream'));
  assert.match(printed, /\[redacted\]/);
});
