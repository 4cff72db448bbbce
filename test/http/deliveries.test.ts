import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { createServer } from 'node:http';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { createServer as createTcpServer } from 'node:net';
import type { AddressInfo, Socket } from 'node:net';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import { sign as octokitSign } from '@octokit/webhooks-methods';
import { Webhook as StandardWebhook } from 'standardwebhooks';
import { Webhook as SvixWebhook } from 'svix';
import { assertProblem, runAuthSuite } from '../harness/authSuite.ts';
import { executeSql, queryRows } from '../harness/db.ts';
import { requireRedis, TEST_REDIS_URL } from '../harness/redis.ts';
import { startHarness } from '../harness/startHarness.ts';
import type { Harness } from '../harness/startHarness.ts';

interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}
type Handler = (req: IncomingMessage, res: ServerResponse, n: number) => void;

interface Delivery {
  id: string;
  endpointId: string;
  subjectId: string;
  eventType: string;
  status: string;
  attempts: number;
  nextAttemptAt: string | null;
  lastError: string | null;
  history: { attempt: number; statusCode: number | null; responseBody: string | null; error: string | null; outcome: string }[];
}

/** A receiver on loopback: records every request and answers with `handler` (200 by default). */
async function receiver(t: TestContext): Promise<{ url: string; got: Received[]; handle(h: Handler): void }> {
  const got: Received[] = [];
  let handler: Handler = (_req, res) => res.end('ok');
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      got.push({ path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks) });
      handler(req, res, got.length);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => server.close(() => r())));
  t.after(() => server.closeAllConnections());
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, got, handle: (h) => (handler = h) };
}

/** The tests move the simulated clock on by minutes at a time: leases long enough not to run out under an attempt in flight. */
const DELIVERY = JSON.stringify({ pollMs: 10, leaseMs: 86_400_000 });

async function setup(t: TestContext): Promise<Harness> {
  return startHarness(t, { env: { PORTCULLIS_SSRF_ALLOW: '127.0.0.0/8', PORTCULLIS_DELIVERY: DELIVERY, PORTCULLIS_PROCESSING: JSON.stringify({ pollMs: 10 }) } });
}

async function endpoint(h: Harness, body: Record<string, unknown>): Promise<{ id: string; secret: string }> {
  const res = await h.post('/v1/endpoints', { body });
  assert.equal(res.statusCode, 201, res.body);
  return res.json();
}

async function publish(h: Harness, eventType: string, payload: object, headers: Record<string, string> = {}): Promise<{ id: string; deliveries: number }> {
  const res = await h.post('/v1/messages', { body: { eventType, payload }, headers });
  assert.equal(res.statusCode, 202, res.body);
  return res.json();
}

async function until<T>(what: string, read: () => Promise<T>, done: (v: T) => boolean, tick: () => void = () => undefined, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms: ${what}; last ${JSON.stringify(value)}`);
    tick();
    await new Promise((r) => setTimeout(r, 10));
  }
}

const deliveriesOf = async (h: Harness, query: string): Promise<Delivery[]> => (await h.get(`/v1/deliveries?${query}`)).json<{ data: Delivery[] }>().data;
const deliveryDetail = async (h: Harness, id: string): Promise<Delivery> => (await h.get(`/v1/deliveries/${id}`)).json<Delivery>();

/** Verifies with the receiver libraries as of the simulated time (they check the timestamp against Date.now). */
function verifyAt(now: Date, secret: string, r: Received): void {
  const headers = Object.fromEntries(Object.entries(r.headers).map(([k, v]) => [k, String(v)]));
  const realNow = Date.now;
  Date.now = () => now.getTime();
  try {
    new StandardWebhook(secret).verify(r.body.toString('utf8'), headers);
    new SvixWebhook(secret).verify(r.body.toString('utf8'), headers);
  } finally {
    Date.now = realNow;
  }
}

runAuthSuite({ method: 'POST', url: '/v1/messages', scope: 'messages:write', body: { eventType: 'a.b', payload: {} } });
runAuthSuite({ method: 'GET', url: '/v1/deliveries', scope: 'deliveries:read' });

test('a published message reaches every matching endpoint, signed so the standardwebhooks and svix libraries verify it', async (t) => {
  const h = await setup(t);
  const a = await receiver(t);
  const b = await receiver(t);
  const invoices = await endpoint(h, { url: `${a.url}/hooks`, eventTypes: ['invoice.*'], headers: { 'x-tenant': 'acme', authorization: 'Bearer for-the-receiver' } });
  await endpoint(h, { url: `${b.url}/hooks`, eventTypes: ['user.created'] });
  const msg = await publish(h, 'invoice.paid', { invoiceId: 'in_1', amount: 4200 });
  assert.equal(msg.deliveries, 1);

  await until('delivered', async () => a.got.length, (n) => n === 1);
  const r = a.got[0]!;
  assert.equal(r.path, '/hooks');
  assert.equal(r.body.toString(), JSON.stringify({ invoiceId: 'in_1', amount: 4200 }));
  assert.equal(r.headers['webhook-id'], msg.id);
  assert.equal(r.headers['content-type'], 'application/json');
  assert.equal(r.headers['portcullis-event-type'], 'invoice.paid');
  assert.equal(r.headers['x-tenant'], 'acme');
  assert.equal(r.headers.authorization, 'Bearer for-the-receiver', 'a write-only header is sent all the same');
  assert.match(String(r.headers['webhook-signature']), /^v1,[A-Za-z0-9+/]+=*$/);
  verifyAt(new Date(), invoices.secret, r);
  assert.throws(() => verifyAt(new Date(), `whsec_${Buffer.alloc(24, 1).toString('base64')}`, r));
  assert.equal(b.got.length, 0);

  const [d] = await until('succeeded', () => deliveriesOf(h, `subject=${msg.id}`), (ds) => ds[0]?.status === 'succeeded');
  const detail = await deliveryDetail(h, d!.id);
  assert.deepEqual(detail.history.map((x) => [x.attempt, x.statusCode, x.responseBody, x.outcome]), [[1, 200, 'ok', 'succeeded']]);
  const metrics = (await h.get('/metrics')).body;
  assert.match(metrics, new RegExp(`portcullis_delivery_attempts_total\\{endpoint="${invoices.id}",outcome="succeeded"\\} 1`));
  assert.match(metrics, /portcullis_delivery_end_to_end_seconds_count 1/);
});

test('failures are retried on the schedule, each attempt re-signed with its own time: hours later the libraries still verify it', async (t) => {
  const h = await setup(t);
  const a = await receiver(t);
  a.handle((_req, res, n) => {
    res.statusCode = n < 3 ? 500 : 204;
    res.end(n < 3 ? 'not yet' : '');
  });
  const ep = await endpoint(h, { url: a.url, retrySchedule: [0, 5, 7200] });
  const msg = await publish(h, 'order.created', { id: 1 });
  const [first] = await until('first attempt failed', () => deliveriesOf(h, `subject=${msg.id}`), (ds) => ds[0]?.attempts === 1 && ds[0].status === 'pending');
  assert.equal(first!.lastError, 'HTTP 500');
  const due = Date.parse(first!.nextAttemptAt!) - h.clock().getTime();
  assert.ok(due >= 4000 && due <= 6000, `5 s ± 20 %: ${due}`);

  await until('second attempt', async () => a.got.length, (n) => n === 2, () => h.clock.advance(1000));
  await until('third attempt', async () => a.got.length, (n) => n === 3, () => h.clock.advance(10 * 60_000));
  const last = a.got[2]!;
  const sentAt = Number(last.headers['webhook-timestamp']) * 1000;
  assert.ok(sentAt - Number(a.got[0]!.headers['webhook-timestamp']) * 1000 >= 2 * 3600_000 * 0.8, 'hours after the first attempt');
  assert.equal(last.headers['webhook-id'], a.got[0]!.headers['webhook-id'], 'webhook-id is stable across retries');
  verifyAt(new Date(sentAt), ep.secret, last);

  const done = await until('succeeded', async () => (await deliveriesOf(h, `subject=${msg.id}`))[0]!, (d) => d.status === 'succeeded');
  const detail = await deliveryDetail(h, done.id);
  assert.deepEqual(detail.history.map((x) => [x.attempt, x.statusCode, x.outcome]), [
    [1, 500, 'retry'],
    [2, 500, 'retry'],
    [3, 204, 'succeeded'],
  ]);
});

test('a 3xx is a failure and is not followed; after the last attempt the delivery is dead, and retry and recover send it again', async (t) => {
  const h = await setup(t);
  const a = await receiver(t);
  let moved = true;
  a.handle((req, res) => {
    if (moved && req.url === '/hooks') {
      res.writeHead(302, { location: 'http://169.254.169.254/latest/meta-data/' });
      return res.end();
    }
    res.end('ok');
  });
  const ep = await endpoint(h, { url: `${a.url}/hooks`, retrySchedule: [0] });
  const msg = await publish(h, 'order.created', { id: 2 });
  const [dead] = await until('dead', () => deliveriesOf(h, `subject=${msg.id}`), (ds) => ds[0]?.status === 'dead');
  assert.match(dead!.lastError!, /^HTTP 302 \(redirects are not followed: http:\/\/169\.254\.169\.254/);
  assert.equal(a.got.length, 1);
  assert.deepEqual((await deliveriesOf(h, 'status=dead')).map((d) => d.id), [dead!.id]);

  moved = false;
  const retried = await h.post(`/v1/deliveries/${dead!.id}/retry`);
  assert.equal(retried.statusCode, 202, retried.body);
  await until('retried', async () => (await deliveryDetail(h, dead!.id)).status, (s) => s === 'succeeded');

  moved = true;
  const msg2 = await publish(h, 'order.created', { id: 3 });
  await until('dead again', () => deliveriesOf(h, `subject=${msg2.id}`), (ds) => ds[0]?.status === 'dead');
  moved = false;
  const recovered = await h.post(`/v1/endpoints/${ep.id}/recover`, { body: { since: new Date(h.clock().getTime() - 60_000).toISOString() } });
  assert.deepEqual([recovered.statusCode, recovered.json()], [202, { retried: 1 }]);
  await until('recovered', () => deliveriesOf(h, `subject=${msg2.id}`), (ds) => ds[0]?.status === 'succeeded');
});

test('429 with Retry-After waits at least that long (capped); a slow answer times out; a huge answer is read only in part', async (t) => {
  const h = await setup(t);
  const a = await receiver(t);
  a.handle((req, res) => {
    if (req.url === '/busy') {
      res.writeHead(429, { 'retry-after': '600' });
      return res.end();
    }
    if (req.url === '/slow') return void setTimeout(() => res.end('late'), 3000);
    res.end('x'.repeat(1_000_000));
  });
  const busy = await endpoint(h, { url: `${a.url}/busy`, eventTypes: ['t.busy'] });
  await endpoint(h, { url: `${a.url}/slow`, eventTypes: ['t.slow'], timeoutSeconds: 1 });
  await endpoint(h, { url: `${a.url}/huge`, eventTypes: ['t.huge'] });
  const m1 = await publish(h, 't.busy', {});
  const m2 = await publish(h, 't.slow', {});
  const m3 = await publish(h, 't.huge', {});

  const [b] = await until('busy attempted', () => deliveriesOf(h, `subject=${m1.id}`), (ds) => ds[0]?.attempts === 1 && ds[0].status === 'pending');
  assert.ok(Date.parse(b!.nextAttemptAt!) - h.clock().getTime() >= 600_000, 'Retry-After honoured');
  const [s] = await until('slow attempted', () => deliveriesOf(h, `subject=${m2.id}`), (ds) => ds[0]?.attempts === 1 && ds[0].status === 'pending');
  assert.equal(s!.lastError, 'timed out after 1000 ms');
  const [g] = await until('huge delivered', () => deliveriesOf(h, `subject=${m3.id}`), (ds) => ds[0]?.status === 'succeeded');
  assert.equal((await deliveryDetail(h, g!.id)).history[0]!.responseBody!.length, 4096);
  assert.equal(busy.id, b!.endpointId);
});

test('410 Gone disables the endpoint and announces it to endpoints subscribed to portcullis.*; re-enabling resumes', async (t) => {
  const h = await setup(t);
  const a = await receiver(t);
  const ops = await receiver(t);
  let gone = true;
  a.handle((_req, res) => {
    res.statusCode = gone ? 410 : 200;
    res.end();
  });
  const ep = await endpoint(h, { url: a.url, eventTypes: ['user.*', 'portcullis.*'] });
  const watcher = await endpoint(h, { url: ops.url, eventTypes: ['portcullis.*'] });
  const msg = await publish(h, 'user.deleted', { id: 9 });
  assert.equal(msg.deliveries, 1, 'operational subscribers get only operational events');

  await until('announced', async () => ops.got.length, (n) => n === 1);
  const announced = JSON.parse(ops.got[0]!.body.toString()) as { type: string; data: { endpointId: string; reason: string } };
  assert.equal(announced.type, 'portcullis.endpoint.disabled');
  assert.deepEqual([announced.data.endpointId, announced.data.reason], [ep.id, 'gone']);
  assert.deepEqual(Object.keys(announced.data).sort(), ['endpointId', 'failingSince', 'reason'], 'no URL: it may hold the receiver credentials');
  verifyAt(new Date(), watcher.secret, ops.got[0]!);
  assert.deepEqual((await deliveriesOf(h, `endpoint=${ep.id}`)).map((d) => d.subjectId), [msg.id], 'not announced to the endpoint itself');
  const disabled = (await h.get(`/v1/endpoints/${ep.id}`)).json<{ enabled: boolean; disabledReason: string }>();
  assert.deepEqual([disabled.enabled, disabled.disabledReason], [false, 'gone']);
  assert.match((await h.get('/metrics')).body, /portcullis_endpoints_disabled_total\{reason="gone"\} 1/);

  gone = false;
  assert.equal((await h.patch(`/v1/endpoints/${ep.id}`, { body: { enabled: true } })).statusCode, 200);
  await until('resumed', () => deliveriesOf(h, `subject=${msg.id}`), (ds) => ds[0]?.status === 'succeeded', () => h.clock.advance(10_000));
});

test('an inbound event is forwarded byte for byte with the provider headers receivers rely on, and our signature instead of the provider one', async (t) => {
  const h = await setup(t);
  const a = await receiver(t);
  const src = (await h.post('/v1/sources', { body: { name: 'GitHub', slug: 'gh', type: 'github', secret: 'gh-secret' } })).json<{ id: string }>();
  const ep = await endpoint(h, { url: a.url, eventTypes: ['github.*'], sourceIds: [src.id] });
  const body = '{"ref":"refs/heads/main",  "spacing":"kept"}';
  const res = await h.post('/in/gh', {
    key: null,
    payload: body,
    headers: { 'content-type': 'application/json', 'x-github-event': 'push', 'x-github-delivery': 'fwd-1', 'x-hub-signature-256': await octokitSign('gh-secret', body) },
  });
  assert.equal(res.statusCode, 200, res.body);
  const eventId = res.json<{ eventId: string }>().eventId;

  await until('forwarded', async () => a.got.length, (n) => n === 1);
  const r = a.got[0]!;
  assert.equal(r.body.toString(), body);
  assert.equal(r.headers['x-github-event'], 'push');
  assert.equal(r.headers['x-github-delivery'], 'fwd-1');
  assert.equal(r.headers['x-hub-signature-256'], undefined);
  assert.equal(r.headers['portcullis-event-type'], 'github.push');
  assert.equal(r.headers['portcullis-source'], src.id);
  assert.equal(r.headers['webhook-id'], eventId);
  verifyAt(new Date(), ep.secret, r);

  // A replay is a new processing job: delivered again. The same job retried would not be.
  assert.equal((await h.post(`/v1/events/${eventId}/replay`)).statusCode, 202);
  await until('delivered again', async () => a.got.length, (n) => n === 2);
  assert.equal((await deliveriesOf(h, `subject=${eventId}`)).length, 2);
});

test('during a secret rotation every delivery carries both signatures; either secret verifies', async (t) => {
  const h = await setup(t);
  const a = await receiver(t);
  const ep = await endpoint(h, { url: a.url });
  const rotated = await h.post(`/v1/endpoints/${ep.id}/rotate-secret`, { body: { gracePeriodSeconds: 3600 } });
  assert.equal(rotated.statusCode, 200, rotated.body);
  const newSecret = rotated.json<{ secret: string }>().secret;
  await publish(h, 'a.b', { n: 1 });
  await until('delivered', async () => a.got.length, (n) => n === 1);
  assert.equal(String(a.got[0]!.headers['webhook-signature']).split(' ').length, 2);
  verifyAt(new Date(), ep.secret, a.got[0]!);
  verifyAt(new Date(), newSecret, a.got[0]!);

  h.clock.advance(3601_000);
  await publish(h, 'a.b', { n: 2 });
  await until('delivered', async () => a.got.length, (n) => n === 2);
  assert.equal(String(a.got[1]!.headers['webhook-signature']).split(' ').length, 1);
  verifyAt(new Date(Number(a.got[1]!.headers['webhook-timestamp']) * 1000), newSecret, a.got[1]!);
});

test('two concurrent identical messages with one Idempotency-Key make one message', async (t) => {
  const h = await setup(t);
  const body = { eventType: 'x.y', payload: { a: 1 } };
  const [one, two] = await Promise.all([h.post('/v1/messages', { body, headers: { 'idempotency-key': 'race-1' } }), h.post('/v1/messages', { body, headers: { 'idempotency-key': 'race-1' } })]);
  const statuses = [one.statusCode, two.statusCode].sort();
  assert.ok(statuses[0] === 202 && (statuses[1] === 202 || statuses[1] === 409), String(statuses));
  assert.equal((await h.get('/v1/messages')).json<{ data: unknown[] }>().data.length, 1);
  const again = await h.post('/v1/messages', { body, headers: { 'idempotency-key': 'race-1' } });
  assert.equal(again.json<{ id: string }>().id, one.statusCode === 202 ? one.json<{ id: string }>().id : two.json<{ id: string }>().id);
  assertProblem(await h.post('/v1/messages', { body: { ...body, payload: { a: 2 } }, headers: { 'idempotency-key': 'race-1' } }), 422, 'idempotency-mismatch');
});

test('an Idempotency-Key is settled with its message in one transaction: a repeat finds the message even if nothing was recorded after the commit', async (t) => {
  const h = await setup(t);
  // As if the process died between committing the message and answering: the usual record after the response never happens.
  h.services.store.idempotency.complete = async () => {
    throw new Error('the process is gone');
  };
  const body = { eventType: 'x.y', payload: { a: 1 } };
  const first = await h.post('/v1/messages', { body, headers: { 'idempotency-key': 'settled-1' } });
  assert.equal(first.statusCode, 202, first.body);
  // Past the time after which an unfinished claim is taken over by a repeat.
  h.clock.advance(61_000);
  const again = await h.post('/v1/messages', { body, headers: { 'idempotency-key': 'settled-1' } });
  assert.deepEqual([again.statusCode, again.headers['idempotent-replayed'], again.headers.location], [202, 'true', first.headers.location]);
  assert.deepEqual(again.json(), first.json());
  assert.equal((await h.get('/v1/messages')).json<{ data: unknown[] }>().data.length, 1);
  assertProblem(await h.post('/v1/messages', { body: { ...body, payload: { a: 2 } }, headers: { 'idempotency-key': 'settled-1' } }), 422, 'idempotency-mismatch');
});

test('message and delivery errors are problems and write nothing', async (t) => {
  const h = await setup(t);
  const json = { 'content-type': 'application/json' };
  assertProblem(await h.post('/v1/messages', { payload: '{"eventType":', headers: json }), 400, 'malformed-request');
  assertProblem(await h.post('/v1/messages', { body: { eventType: 5, payload: {} } }), 400, 'validation-failed');
  assertProblem(await h.post('/v1/messages', { body: { eventType: 'a.b', payload: [1] } }), 400, 'validation-failed');
  assertProblem(await h.post('/v1/messages', { body: { eventType: 'portcullis.endpoint.disabled', payload: {} } }), 400, 'validation-failed');
  assertProblem(await h.post('/v1/messages', { body: { eventType: 'a b', payload: {} } }), 400, 'validation-failed');
  assertProblem(await h.post('/v1/messages', { body: { eventType: 'a.b', payload: {}, extra: 1 } }), 400, 'validation-failed');
  assertProblem(await h.post('/v1/messages', { payload: JSON.stringify({ eventType: 'a.b', payload: { big: 'x'.repeat(2_000_000) } }), headers: json }), 413, 'payload-too-large');
  assert.deepEqual((await h.get('/v1/messages')).json<{ data: unknown[] }>().data, []);

  assertProblem(await h.get('/v1/messages/msg_nope'), 404, 'not-found');
  assertProblem(await h.get('/v1/deliveries/dlv_nope'), 404, 'not-found');
  assertProblem(await h.post('/v1/deliveries/dlv_nope/retry'), 404, 'not-found');
  assertProblem(await h.post('/v1/endpoints/ep_nope/recover', { body: { since: '2026-01-01T00:00:00Z' } }), 404, 'not-found');
  assertProblem(await h.post('/v1/deliveries/retry', { body: {} }), 400, 'validation-failed');
  assertProblem(await h.post('/v1/deliveries/retry', { body: { status: 'lost' } }), 400, 'validation-failed');
  assertProblem(await h.get('/v1/deliveries?status=lost'), 400, 'validation-failed');
  const reader = await h.createKey(['messages:read', 'deliveries:read']);
  assertProblem(await h.post('/v1/messages', { key: reader.secret, body: { eventType: 'a.b', payload: {} } }), 403, 'scope-missing');
  assertProblem(await h.post('/v1/deliveries/retry', { key: reader.secret, body: { status: 'dead' } }), 403, 'scope-missing');
});

test('test sends one signed event and answers with the attempt; every attempt re-checks where the name points (DNS may change after creation)', async (t) => {
  const a = await receiver(t);
  let address = '127.0.0.1';
  const h = await startHarness(t, {
    env: { PORTCULLIS_SSRF_ALLOW: '127.0.0.0/8', PORTCULLIS_DELIVERY: DELIVERY },
    resolver: async () => [{ address, family: 4 }],
  });
  const port = new URL(a.url).port;
  const ep = await endpoint(h, { url: `http://hooks.example.test:${port}/in` });
  const tested = await h.post(`/v1/endpoints/${ep.id}/test`);
  assert.equal(tested.statusCode, 200, tested.body);
  assert.deepEqual([tested.json().statusCode, tested.json().outcome], [200, 'succeeded']);
  assert.equal(JSON.parse(a.got[0]!.body.toString()).type, 'portcullis.endpoint.test');
  verifyAt(new Date(), ep.secret, a.got[0]!);
  // Stored as a message and its delivery, with this attempt (not in the queue: the dispatcher does not send it again).
  const { messageId, deliveryId } = tested.json<{ messageId: string; deliveryId: string }>();
  assert.equal(a.got[0]!.headers['webhook-id'], messageId);
  const detail = await deliveryDetail(h, deliveryId);
  assert.deepEqual(
    [detail.status, detail.endpointId, detail.subjectId, detail.eventType, detail.attempts, detail.history.map((x) => [x.attempt, x.statusCode, x.outcome])],
    ['succeeded', ep.id, messageId, 'portcullis.endpoint.test', 1, [[1, 200, 'succeeded']]],
  );
  assert.equal((await h.get(`/v1/messages/${messageId}`)).statusCode, 200);

  // The name now points at a private address: refused at connect, nothing sent.
  address = '10.0.0.5';
  const refused = (await h.post(`/v1/endpoints/${ep.id}/test`)).json<{ statusCode: number | null; error: string; outcome: string; deliveryId: string }>();
  assert.deepEqual([refused.statusCode, refused.outcome], [null, 'dead']);
  assert.match(refused.error, /refused|not allowed/i);
  const deadTest = await deliveryDetail(h, refused.deliveryId);
  assert.deepEqual([deadTest.status, deadTest.lastError, deadTest.history.length], ['dead', refused.error, 1]);
  const msg = await publish(h, 'a.b', {});
  const [d] = await until('attempted', () => deliveriesOf(h, `subject=${msg.id}`), (ds) => (ds[0]?.attempts ?? 0) >= 1 && ds[0]!.status !== 'sending');
  assert.match(d!.lastError!, /refused|not allowed/i);
  assert.equal(a.got.length, 1);
  assertProblem(await h.post('/v1/endpoints/ep_nope/test'), 404, 'not-found');
});

test('an endpoint failing N attempts in a row, or for too long, is disabled as failing', async (t) => {
  const a = await receiver(t);
  a.handle((_req, res) => {
    res.statusCode = 500;
    res.end();
  });
  const h = await startHarness(t, { env: { PORTCULLIS_SSRF_ALLOW: '127.0.0.0/8', PORTCULLIS_DELIVERY: JSON.stringify({ pollMs: 10, leaseMs: 86_400_000, disableAfterFailures: 3, disableAfterSeconds: 86_400 }) } });
  const ops = await receiver(t);
  await endpoint(h, { url: ops.url, eventTypes: ['portcullis.endpoint.disabled'] });
  const byCount = await endpoint(h, { url: `${a.url}/count`, eventTypes: ['count.*'], retrySchedule: [0, 0, 0, 0, 0] });
  await publish(h, 'count.x', {});
  await until('disabled after 3 failures', async () => (await h.get(`/v1/endpoints/${byCount.id}`)).json<{ enabled: boolean; disabledReason: string | null; consecutiveFailures: number }>(), (e) => !e.enabled);
  const e1 = (await h.get(`/v1/endpoints/${byCount.id}`)).json<{ disabledReason: string; consecutiveFailures: number }>();
  assert.deepEqual([e1.disabledReason, e1.consecutiveFailures], ['failing', 3]);

  const byTime = await endpoint(h, { url: `${a.url}/time`, eventTypes: ['time.*'], retrySchedule: [0, 3600, 3600] });
  const msg = await publish(h, 'time.x', {});
  await until('first failure', () => deliveriesOf(h, `subject=${msg.id}`), (ds) => ds[0]?.attempts === 1 && ds[0].status === 'pending');
  h.clock.advance(86_400_000);
  await until('disabled after a day of failing', async () => (await h.get(`/v1/endpoints/${byTime.id}`)).json<{ enabled: boolean; disabledReason: string | null }>(), (e) => !e.enabled && e.disabledReason === 'failing');
  assert.match((await h.get('/metrics')).body, /portcullis_endpoints_disabled_total\{reason="failing"\} 2/);
  await until('both announced', async () => ops.got.length, (n) => n === 2);
  const announced = ops.got.map((r) => (JSON.parse(r.body.toString()) as { data: { endpointId: string; reason: string; failingSince: string } }).data);
  assert.deepEqual(
    announced.map((d) => [d.endpointId, d.reason]),
    [
      [byCount.id, 'failing'],
      [byTime.id, 'failing'],
    ],
  );
  assert.ok(announced.every((d) => !Number.isNaN(Date.parse(d.failingSince))));
});

test('a slow endpoint holds only its own slots; an endpoint rate limit spaces its deliveries; resets and DNS failures are retried', async (t) => {
  const slow = await receiver(t);
  let open = 0;
  let maxOpen = 0;
  slow.handle((_req, res) => {
    open++;
    maxOpen = Math.max(maxOpen, open);
    setTimeout(() => {
      open--;
      res.end();
    }, 1500);
  });
  const fast = await receiver(t);
  const reset = await receiver(t);
  reset.handle((req) => req.socket.destroy());
  const h = await startHarness(t, {
    env: { PORTCULLIS_SSRF_ALLOW: '127.0.0.0/8', PORTCULLIS_DELIVERY: JSON.stringify({ pollMs: 10, leaseMs: 86_400_000, concurrency: 16, perEndpointConcurrency: 4 }) },
    resolver: async (name) => {
      if (name === 'gone.example.test') throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${name}`), { code: 'ENOTFOUND' });
      return [{ address: '127.0.0.1', family: 4 }];
    },
  });
  await endpoint(h, { url: slow.url, eventTypes: ['slow.*'] });
  await endpoint(h, { url: fast.url, eventTypes: ['fast.*'], rateLimitPerSecond: 2 });
  await endpoint(h, { url: reset.url, eventTypes: ['reset.*'] });
  await endpoint(h, { url: `http://gone.example.test:${new URL(fast.url).port}/`, eventTypes: ['dns.*'] });
  for (let i = 0; i < 12; i++) await publish(h, 'slow.x', { i });
  for (let i = 0; i < 5; i++) await publish(h, 'fast.x', { i });
  const r = await publish(h, 'reset.x', {});
  const d = await publish(h, 'dns.x', {});

  // Two at once (its burst), then one more per half second of the simulated clock.
  await until('fast burst', async () => fast.got.length, (n) => n === 2);
  await new Promise((res) => setTimeout(res, 200));
  assert.equal(fast.got.length, 2, 'rate limit holds the rest back');
  await until('fast rest', async () => fast.got.length, (n) => n === 5, () => h.clock.advance(100));
  assert.ok(maxOpen <= 4, `the slow endpoint had ${maxOpen} attempts at once`);

  const [resetDelivery] = await until('reset attempted', () => deliveriesOf(h, `subject=${r.id}`), (ds) => ds[0]?.attempts === 1 && ds[0].status === 'pending');
  assert.match(resetDelivery!.lastError!, /socket|reset|closed/i);
  const [dnsDelivery] = await until('dns attempted', () => deliveriesOf(h, `subject=${d.id}`), (ds) => ds[0]?.attempts === 1 && ds[0].status === 'pending');
  assert.match(dnsDelivery!.lastError!, /ENOTFOUND/);
});

test('with Redis, an endpoint rate limit holds over every instance sharing the store', async (t) => {
  if (!(await requireRedis(t))) return;
  const a = await receiver(t);
  const env = { PORTCULLIS_SSRF_ALLOW: '127.0.0.0/8', PORTCULLIS_DELIVERY: DELIVERY, PORTCULLIS_REDIS_URL: TEST_REDIS_URL };
  const one = await startHarness(t, { env });
  // A second instance on the same store and clock: its own dispatcher claims deliveries too.
  const two = await startHarness(t, { env, sharing: one, clock: one.clock });
  await endpoint(one, { url: a.url, rateLimitPerSecond: 2 });
  // Published on each instance in turn: each wakes its own dispatcher, so both send.
  for (let i = 0; i < 6; i++) await publish(i % 2 ? one : two, 'a.b', { i });

  // Its burst of two in all, though each dispatcher alone would send two while the clock stands still.
  await until('burst', async () => a.got.length, (n) => n === 2);
  await new Promise((res) => setTimeout(res, 300));
  assert.equal(a.got.length, 2, 'held back across instances');
  await until('the rest, one per half second', async () => a.got.length, (n) => n === 6, () => one.clock.advance(100));
});

test('header values stored in clear by an earlier version are sealed at the next start, keep their endpoint unchanged, and are still sent', async (t) => {
  const a = await receiver(t);
  const env = { PORTCULLIS_SSRF_ALLOW: '127.0.0.0/8', PORTCULLIS_DELIVERY: DELIVERY };
  const h = await startHarness(t, { env });
  const ep = await endpoint(h, { url: a.url, headers: { authorization: 'Bearer new', 'x-team': 'new' } });
  const before = (await h.get(`/v1/endpoints/${ep.id}`)).json<{ updatedAt: string }>();
  // What migration 0009 stored: the values in clear.
  await executeSql(h, `UPDATE endpoints SET headers = '{"authorization":"Bearer kept-in-clear","x-team":"billing"}'`);

  const next = await startHarness(t, { env, sharing: h });
  const got = (await next.get(`/v1/endpoints/${ep.id}`)).json<{ headers: Record<string, string>; sensitiveHeaders: string[]; updatedAt: string }>();
  assert.deepEqual([got.headers, got.sensitiveHeaders, got.updatedAt], [{ 'x-team': 'billing' }, ['authorization'], before.updatedAt]);
  const stored = JSON.stringify(await queryRows(h, 'SELECT headers FROM endpoints'));
  assert.ok(!stored.includes('kept-in-clear') && !stored.includes('billing'), stored);
  assert.match(next.logText(), /endpoint header values stored in clear were sealed/);

  const tested = await next.post(`/v1/endpoints/${ep.id}/test`);
  assert.equal(tested.json<{ outcome: string }>().outcome, 'succeeded', tested.body);
  assert.deepEqual([a.got.at(-1)!.headers.authorization, a.got.at(-1)!.headers['x-team']], ['Bearer kept-in-clear', 'billing']);
});

test('deleting an endpoint dead-letters its waiting deliveries', async (t) => {
  const h = await setup(t);
  const a = await receiver(t);
  a.handle((_req, res) => {
    res.statusCode = 503;
    res.end();
  });
  const ep = await endpoint(h, { url: a.url, retrySchedule: [0, 3600] });
  const msg = await publish(h, 'a.b', {});
  await until('first attempt', () => deliveriesOf(h, `subject=${msg.id}`), (ds) => ds[0]?.attempts === 1 && ds[0].status === 'pending');
  assert.equal((await h.request('DELETE', `/v1/endpoints/${ep.id}`)).statusCode, 204);
  const [d] = await deliveriesOf(h, `subject=${msg.id}`);
  assert.deepEqual([d!.status, d!.lastError], ['dead', 'endpoint deleted']);
});

test('an endpoint answering byte by byte is cut off at its timeout and retried', async (t) => {
  // A raw socket server: it trickles its status line out one byte every 100 ms.
  const sockets = new Set<Socket>();
  const trickle = createTcpServer((socket) => {
    sockets.add(socket);
    const answer = 'HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n';
    let i = 0;
    const timer = setInterval(() => {
      if (socket.destroyed || i >= answer.length) return clearInterval(timer);
      socket.write(answer[i++]!);
    }, 100);
    socket.on('close', () => clearInterval(timer));
    socket.on('error', () => undefined);
  });
  await new Promise<void>((r) => trickle.listen(0, '127.0.0.1', r));
  t.after(() => {
    for (const s of sockets) s.destroy();
    return new Promise<void>((r) => trickle.close(() => r()));
  });
  const h = await setup(t);
  await endpoint(h, { url: `http://127.0.0.1:${(trickle.address() as AddressInfo).port}/`, timeoutSeconds: 1 });
  const started = Date.now();
  const msg = await publish(h, 'a.b', {});
  const [d] = await until('cut off', () => deliveriesOf(h, `subject=${msg.id}`), (ds) => ds[0]?.attempts === 1 && ds[0].status === 'pending');
  assert.equal(d!.lastError, 'timed out after 1000 ms');
  assert.ok(Date.now() - started < 3500, 'cut at the timeout, not when the answer ends');
});

test('U+0000: kept in a message payload byte for byte, recorded as U+FFFD in an answer, refused in stored fields with nothing written', async (t) => {
  const h = await setup(t);
  const a = await receiver(t);
  a.handle((_req, res) => res.end(Buffer.from([0x61, 0, 0x62])));
  const ep = await endpoint(h, { url: a.url });
  const msg = await publish(h, 'a.b', { s: 'a\u0000b' });
  const [d] = await until('delivered', () => deliveriesOf(h, `subject=${msg.id}`), (ds) => ds[0]?.status === 'succeeded');
  assert.equal(a.got[0]!.body.toString(), '{"s":"a\\u0000b"}');
  assert.equal((await deliveryDetail(h, d!.id)).history[0]!.responseBody, 'a\uFFFDb');

  const refused = [
    ['POST', '/v1/endpoints', { url: a.url, description: 'x\u0000y' }, 'body.description'],
    ['POST', '/v1/endpoints', { url: a.url, metadata: { 'k\u0000': 1 } }, 'body.metadata.k\u0000'],
    ['PATCH', `/v1/endpoints/${ep.id}`, { metadata: { list: ['ok', 'n\u0000'] } }, 'body.metadata.list[1]'],
    ['POST', '/v1/messages', { eventType: 'a\u0000b', payload: {} }, 'body.eventType'],
  ] as const;
  for (const [method, url, body, at] of refused) {
    const problem = assertProblem(await h.request(method, url, { body }), 400, 'validation-failed');
    assert.ok(String(problem.detail).startsWith(`${at} contains U+0000`), String(problem.detail));
  }
  assert.equal((await h.get('/v1/endpoints')).json<{ data: unknown[] }>().data.length, 1);
  assert.deepEqual((await h.get(`/v1/endpoints/${ep.id}`)).json<{ metadata: object }>().metadata, {});
  assert.equal((await h.get('/v1/messages')).json<{ data: unknown[] }>().data.length, 1);

  // An event type read from a generic source's body.
  await h.post('/v1/sources', { body: { name: 'Acme', slug: 'acme', type: 'generic', secret: 'acme-secret', generic: { signatureHeader: 'x-acme-mac', typeJsonPath: 'type' } } });
  const event = '{"type":"order\\u0000created"}';
  const mac = createHmac('sha256', 'acme-secret').update(event).digest('hex');
  assertProblem(await h.post('/in/acme', { key: null, payload: event, headers: { 'content-type': 'application/json', 'x-acme-mac': mac } }), 400, 'malformed-request');
  assert.equal((await h.get('/v1/events')).json<{ data: unknown[] }>().data.length, 0);
});

test("a generic source's signature header (stored neither), credentials and signature-like headers are not forwarded", async (t) => {
  const h = await setup(t);
  const a = await receiver(t);
  const src = (
    await h.post('/v1/sources', { body: { name: 'Acme', slug: 'acme', type: 'generic', secret: 'acme-secret', generic: { signatureHeader: 'x-acme-mac', timestampHeader: 'x-acme-ts', signedContent: 'timestamp.body' } } })
  ).json<{ id: string }>();
  await endpoint(h, { url: a.url, sourceIds: [src.id] });
  const body = '{"n":1}';
  const ts = String(Math.floor(Date.now() / 1000));
  const mac = createHmac('sha256', 'acme-secret').update(`${ts}.${body}`).digest('hex');
  const headers = { 'content-type': 'application/json', 'x-acme-mac': mac, 'x-acme-ts': ts, 'x-api-key': 'k', 'x-acme-hmac-v2': 'h', 'x-event-key': 'order:created', via: '1.1 cdn' };
  const res = await h.post('/in/acme', { key: null, payload: body, headers });
  assert.equal(res.statusCode, 200, res.body);
  await until('forwarded', async () => a.got.length, (n) => n === 1);
  const got = a.got[0]!.headers;
  assert.deepEqual(
    ['x-acme-mac', 'x-api-key', 'x-acme-hmac-v2', 'via'].filter((name) => name in got),
    [],
  );
  // What receivers use is kept, credential-sounding or not (Bitbucket's event type is X-Event-Key).
  assert.deepEqual([got['x-event-key'], got['x-acme-ts']], ['order:created', ts]);
  const stored = (await h.get(`/v1/events/${res.json<{ eventId: string }>().eventId}`)).json<{ headers: Record<string, string> }>().headers;
  assert.equal(stored['x-acme-mac'], undefined, 'nor stored with the event');
});

test('an endpoint deleted while its delivery is on its way: the delivery is dead-lettered, not left waiting, and cannot be retried', async (t) => {
  const h = await setup(t);
  const a = await receiver(t);
  let answer: (() => void) | null = null;
  a.handle((_req, res) => {
    answer = () => {
      res.statusCode = 500;
      res.end();
    };
  });
  const ep = await endpoint(h, { url: a.url });
  const msg = await publish(h, 'a.b', {});
  await until('in flight', async () => answer !== null, (v) => v);
  assert.equal((await h.request('DELETE', `/v1/endpoints/${ep.id}`)).statusCode, 204);
  answer!();
  const [d] = await until('dead-lettered', () => deliveriesOf(h, `subject=${msg.id}`), (ds) => ds[0]?.status === 'dead', () => h.clock.advance(10_000));
  assert.equal(d!.lastError, 'endpoint deleted');
  assert.equal(d!.attempts, 1, 'the attempt made; dead-lettering is not one');
  assertProblem(await h.post(`/v1/deliveries/${d!.id}/retry`), 409, 'conflict');
  assert.equal((await h.post('/v1/deliveries/retry', { body: { endpoint: ep.id } })).json<{ retried: number }>().retried, 0);
});

test('bulk retry takes dead deliveries unless it names a status: a succeeded one goes again only when asked for', async (t) => {
  const h = await setup(t);
  const a = await receiver(t);
  let failing = true;
  a.handle((req, res) => {
    res.statusCode = failing && a.got.at(-1)!.body.toString().includes('"fail"') ? 500 : 200;
    res.end();
    void req;
  });
  const ep = await endpoint(h, { url: a.url, retrySchedule: [0] });
  const ok = await publish(h, 'a.b', { kind: 'ok' });
  const bad = await publish(h, 'a.b', { kind: 'fail' });
  await until('one succeeded, one dead', () => deliveriesOf(h, `endpoint=${ep.id}`), (ds) => ds.map((d) => d.status).sort().join() === 'dead,succeeded');
  failing = false;

  const first = await h.post('/v1/deliveries/retry', { body: { endpoint: ep.id } });
  assert.deepEqual([first.statusCode, first.json<{ retried: number }>().retried], [202, 1]);
  await until('the dead one delivered', () => deliveriesOf(h, `subject=${bad.id}`), (ds) => ds[0]?.status === 'succeeded');
  assert.equal(a.got.filter((r) => r.body.toString().includes('"ok"')).length, 1, 'the succeeded one was not sent again');

  const again = await h.post('/v1/deliveries/retry', { body: { endpoint: ep.id, status: 'succeeded' } });
  assert.equal(again.json<{ retried: number }>().retried, 2);
  await until('both sent again', async () => a.got.length, (n) => n === 5);
  assert.equal((await deliveriesOf(h, `subject=${ok.id}`))[0]!.attempts, 2);
});

test("the schedule's first delay comes before the first attempt, the server's schedule from the environment included", async (t) => {
  const a = await receiver(t);
  a.handle((_req, res) => {
    res.statusCode = 500;
    res.end();
  });
  const h = await startHarness(t, { env: { PORTCULLIS_SSRF_ALLOW: '127.0.0.0/8', PORTCULLIS_DELIVERY: DELIVERY, PORTCULLIS_DELIVERY_RETRY_SCHEDULE: '30,5' } });
  await endpoint(h, { url: `${a.url}/server`, eventTypes: ['s.*'] });
  await endpoint(h, { url: `${a.url}/own`, eventTypes: ['o.*'], retrySchedule: [600] });
  const s = await publish(h, 's.x', {});
  const o = await publish(h, 'o.x', {});
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(a.got.length, 0, 'nothing before the first delay');
  const [due] = await deliveriesOf(h, `subject=${o.id}`);
  assert.ok(Date.parse(due!.nextAttemptAt!) - h.clock().getTime() >= 480_000, due!.nextAttemptAt!);

  // Past the first delay (30 s ± 20 %), then past the second (5 s ± 20 %): /own's first (600 s ± 20 %) stays ahead.
  h.clock.advance(40_000);
  await until('first attempt', () => deliveriesOf(h, `subject=${s.id}`), (ds) => ds[0]?.attempts === 1 && ds[0].status === 'pending');
  h.clock.advance(10_000);
  const [dead] = await until('the second and last attempt, 5 s later', () => deliveriesOf(h, `subject=${s.id}`), (ds) => ds[0]?.status === 'dead');
  assert.equal(dead!.attempts, 2);
  assert.equal(a.got.filter((r) => r.path === '/own').length, 0);
});

test('Retry-After on 503, as a date or past the configured cap, is honoured up to the cap', async (t) => {
  const a = await receiver(t);
  const h = await startHarness(t, { env: { PORTCULLIS_SSRF_ALLOW: '127.0.0.0/8', PORTCULLIS_DELIVERY: JSON.stringify({ pollMs: 10, leaseMs: 86_400_000, retryAfterMaxSeconds: 900 }) } });
  a.handle((req, res) => {
    const after = req.url === '/date' ? new Date(h.clock().getTime() + 700_000).toUTCString() : '86400';
    res.writeHead(503, { 'retry-after': after });
    res.end();
  });
  await endpoint(h, { url: `${a.url}/date`, eventTypes: ['d.*'], retrySchedule: [0, 1] });
  await endpoint(h, { url: `${a.url}/long`, eventTypes: ['l.*'], retrySchedule: [0, 1] });
  const d = await publish(h, 'd.x', {});
  const l = await publish(h, 'l.x', {});
  const waitOf = async (id: string) => {
    const [x] = await until('attempted', () => deliveriesOf(h, `subject=${id}`), (ds) => ds[0]?.attempts === 1 && ds[0].status === 'pending');
    return Date.parse(x!.nextAttemptAt!) - h.clock().getTime();
  };
  const dateWait = await waitOf(d.id);
  assert.ok(dateWait >= 690_000 && dateWait <= 700_000, `an HTTP date: ${dateWait}`);
  const longWait = await waitOf(l.id);
  assert.ok(longWait >= 899_000 && longWait <= 900_000, `capped at 900 s: ${longWait}`);
});

test('an attempt never outlives its lease: an endpoint timeout longer than three quarters of it is cut there', async (t) => {
  const a = await receiver(t);
  a.handle(() => undefined);
  const h = await startHarness(t, { env: { PORTCULLIS_SSRF_ALLOW: '127.0.0.0/8', PORTCULLIS_DELIVERY: JSON.stringify({ pollMs: 10, leaseMs: 2000 }) } });
  await endpoint(h, { url: a.url, timeoutSeconds: 60 });
  const msg = await publish(h, 'a.b', {});
  const [d] = await until('cut', () => deliveriesOf(h, `subject=${msg.id}`), (ds) => ds[0]?.lastError !== null && ds[0]?.lastError !== undefined);
  assert.deepEqual([d!.lastError, d!.attempts, a.got.length], ['timed out after 1500 ms', 1, 1]);
});

test('with the defaults, a failing delivery is attempted eight times over about a day, then dead-lettered; the timeout is 15 s', async (t) => {
  const h = await setup(t);
  const a = await receiver(t);
  a.handle((_req, res) => {
    res.statusCode = 500;
    res.end();
  });
  const ep = await endpoint(h, { url: a.url });
  assert.equal((await h.get(`/v1/endpoints/${ep.id}`)).json<{ timeoutSeconds: number }>().timeoutSeconds, 15);
  const started = h.clock().getTime();
  const msg = await publish(h, 'a.b', {});
  const [d] = await until('dead', () => deliveriesOf(h, `subject=${msg.id}`), (ds) => ds[0]?.status === 'dead', () => h.clock.advance(600_000), 60_000);
  assert.equal(d!.attempts, 8);
  assert.equal((await deliveryDetail(h, d!.id)).history.length, 8);
  const hours = (h.clock().getTime() - started) / 3_600_000;
  // 0 + 5 s + 5 min + 30 min + 2 h + 5 h + 10 h + 10 h = 27.6 h, each ±20 %.
  assert.ok(hours > 22 && hours < 34, `${hours} h`);
});
