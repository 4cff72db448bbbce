import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import { loadConfig } from '../../src/config/load.ts';
import { createOutboundClient } from '../../src/outbound/client.ts';
import type { OutboundOptions } from '../../src/outbound/client.ts';
import { SsrfRefused } from '../../src/outbound/ssrf.ts';
import type { Resolver } from '../../src/outbound/ssrf.ts';

async function receiver(t: TestContext, handler: (req: IncomingMessage, res: ServerResponse) => void, host = '127.0.0.1'): Promise<{ port: number; server: Server; hits: () => number }> {
  let hits = 0;
  const server = createServer((req, res) => {
    hits++;
    handler(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { port: (server.address() as AddressInfo).port, server, hits: () => hits };
}

function client(t: TestContext, options: Partial<OutboundOptions> = {}): ReturnType<typeof createOutboundClient> {
  const c = createOutboundClient({ allow: [], ...options });
  t.after(() => c.close());
  return c;
}

const names = (table: Record<string, string[]>): Resolver => async (hostname) => {
  const addresses = table[hostname];
  if (!addresses) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' });
  return addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
};

const refusedAs = (range: string) => (err: unknown) => err instanceof SsrfRefused && err.range === range;

test('refuses loopback, private, link-local, CGNAT, multicast, metadata and embedded-IPv4 addresses, literal or resolved', async (t) => {
  const c = client(t, {
    resolver: names({ 'internal.example': ['10.0.0.5'], 'mixed.example': ['93.184.216.34', '192.168.1.1'], 'metadata.example': ['169.254.169.254'] }),
  });
  const cases: [string, string][] = [
    ['http://127.0.0.1/', 'loopback'],
    ['http://127.1.2.3/', 'loopback'],
    ['http://[::1]/', 'loopback'],
    ['http://10.1.2.3/', 'private'],
    ['http://172.16.0.1/', 'private'],
    ['http://192.168.0.1/', 'private'],
    ['http://169.254.169.254/latest/meta-data/', 'linkLocal'],
    ['http://[fe80::1]/', 'linkLocal'],
    ['http://100.64.0.1/', 'carrierGradeNat'],
    ['http://100.100.100.200/', 'carrierGradeNat'],
    ['http://224.0.0.1/', 'multicast'],
    ['http://0.0.0.0/', 'unspecified'],
    ['http://[fc00::1]/', 'uniqueLocal'],
    ['http://[fd00:ec2::254]/', 'uniqueLocal'],
    ['http://[::ffff:127.0.0.1]/', 'loopback'],
    ['http://[::ffff:a00:1]/', 'private'],
    ['http://[64:ff9b::a00:1]/', 'rfc6052'],
    ['http://[2002:a00:1::]/', '6to4'],
    ['http://[::127.0.0.1]/', 'notGlobalUnicast'],
    ['http://[::a00:1]/', 'notGlobalUnicast'],
    ['http://internal.example/', 'private'],
    ['http://mixed.example/', 'private'],
    ['http://metadata.example/', 'linkLocal'],
  ];
  for (const [url, range] of cases) await assert.rejects(c.request(url), refusedAs(range), url);
});

test('an allow-listed range is reachable, by literal or by name, and only that range', async (t) => {
  const r = await receiver(t, (_req, res) => res.end('hello'));
  const c = client(t, { allow: ['127.0.0.0/8'], resolver: names({ 'receiver.test': ['127.0.0.1'] }) });
  for (const url of [`http://127.0.0.1:${r.port}/`, `http://receiver.test:${r.port}/`]) {
    const res = await c.request(url);
    assert.equal(res.statusCode, 200);
    assert.equal(await res.body.text(), 'hello');
  }
  await assert.rejects(c.request('http://10.0.0.1/'), refusedAs('private'));
  await assert.rejects(c.request('http://[::1]/'), refusedAs('loopback'));
  assert.equal(r.hits(), 2);
});

test('a name that resolves differently at connect time is checked again: DNS rebinding does not reach an internal address', async (t) => {
  const r = await receiver(t, (_req, res) => res.end('internal'));
  let calls = 0;
  // First answer public (passes the check before the request), then loopback (what the attacker's DNS says at connect).
  const rebinding: Resolver = async () => [{ address: calls++ === 0 ? '93.184.216.34' : '127.0.0.1', family: 4 }];
  const c = client(t, { resolver: rebinding });
  await assert.rejects(c.request(`http://rebind.example:${r.port}/`), refusedAs('loopback'));
  assert.equal(r.hits(), 0);
});

test('only http and https', async (t) => {
  const c = client(t);
  for (const url of ['file:///etc/passwd', 'ftp://example.com/', 'gopher://example.com/', 'data:text/plain,hi']) await assert.rejects(c.request(url), TypeError, url);
});

test('redirects are not followed unless asked, and then each hop is checked and credentials stay with their origin', async (t) => {
  const internal = await receiver(t, (_req, res) => res.end('secret'));
  const seen: (string | undefined)[] = [];
  const other = await receiver(t, (req, res) => {
    seen.push(req.headers.authorization);
    res.end('other');
  }, '127.0.0.2');
  const start = await receiver(t, (req, res) => {
    const to = req.url === '/internal' ? `http://10.0.0.1:${internal.port}/` : req.url === '/other' ? `http://127.0.0.2:${other.port}/landing` : '/final';
    if (req.url === '/final') return void res.end('final');
    res.writeHead(302, { location: to }).end();
  });
  const c = client(t, { allow: ['127.0.0.0/8'] });

  const unfollowed = await c.request(`http://127.0.0.1:${start.port}/internal`);
  assert.equal(unfollowed.statusCode, 302);
  await unfollowed.body.dump();

  const followed = await c.request(`http://127.0.0.1:${start.port}/same`, { maxRedirects: 3 });
  assert.equal(followed.statusCode, 200);
  assert.equal(await followed.body.text(), 'final');

  await assert.rejects(c.request(`http://127.0.0.1:${start.port}/internal`, { maxRedirects: 3 }), refusedAs('private'));
  assert.equal(internal.hits(), 0);

  const crossed = await c.request(`http://127.0.0.1:${start.port}/other`, { maxRedirects: 3, headers: { authorization: 'Bearer upstream-credential' } });
  assert.equal(await crossed.body.text(), 'other');
  assert.deepEqual(seen, [undefined]);
});

test('a server that never answers is cut off by the response timeout', async (t) => {
  const hung = await receiver(t, () => undefined);
  const c = client(t, { allow: ['127.0.0.1'], responseTimeoutMs: 300 });
  const started = Date.now();
  await assert.rejects(c.request(`http://127.0.0.1:${hung.port}/`), (err: Error & { code?: string }) => err.code === 'UND_ERR_HEADERS_TIMEOUT');
  assert.ok(Date.now() - started < 2000);
});

test('connections are kept alive and reused', async (t) => {
  const sockets = new Set<unknown>();
  const r = await receiver(t, (req, res) => {
    sockets.add(req.socket);
    res.end('ok');
  });
  const c = client(t, { allow: ['127.0.0.1'] });
  for (let i = 0; i < 20; i++) await (await c.request(`http://127.0.0.1:${r.port}/`)).body.text();
  // A socket goes back to the pool just after its body ends, so the next request may open a second one; not twenty.
  assert.ok(sockets.size <= 2, `${sockets.size} connections for 20 requests`);
});

test('the SSRF allow-list and trusted proxies must be addresses or CIDRs', () => {
  assert.throws(() => loadConfig({ env: { PORTCULLIS_SSRF_ALLOW: '10.0.0.0/8,not-a-range' } }), /ssrfAllow \(PORTCULLIS_SSRF_ALLOW\): not an address or CIDR: 1 entry/);
  assert.throws(() => loadConfig({ env: { PORTCULLIS_TRUST_PROXY: '10.0.0.0/33' } }), /trustProxy/);
  assert.deepEqual(loadConfig({ env: { PORTCULLIS_SSRF_ALLOW: '127.0.0.1,::1,10.0.0.0/8' } }).ssrfAllow, ['127.0.0.1', '::1', '10.0.0.0/8']);
  assert.deepEqual(loadConfig({ env: { PORTCULLIS_TRUST_PROXY: 'loopback,10.0.0.0/8' } }).trustProxy, ['loopback', '10.0.0.0/8']);
});
