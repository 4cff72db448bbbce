import assert from 'node:assert/strict';
import http from 'node:http';
import { connect } from 'node:net';
import { test } from 'node:test';
import { httpRequest, startServe, waitFor } from '../harness/processes.ts';

/** After its last request, serve must exit well within shutdownTimeoutMs (10 s by default). */
const PROMPT_EXIT_MS = 2500;

const refusesConnections = async (url: string): Promise<boolean> =>
  httpRequest(`${url}/healthz`, { timeoutMs: 1000 }).then(
    () => false,
    (err: NodeJS.ErrnoException) => err.code === 'ECONNREFUSED',
  );

test('SIGTERM stops new connections but lets a request in flight finish with 201, then exits 0 promptly', async (t) => {
  const server = await startServe(t);
  const body = JSON.stringify({ name: 'in-flight', scopes: ['keys:read'] });
  // A slow client on a keep-alive connection: headers and part of the body now, the rest after SIGTERM.
  const socket = connect(server.port, '127.0.0.1');
  t.after(() => socket.destroy());
  const chunks: Buffer[] = [];
  socket.on('data', (b: Buffer) => chunks.push(b));
  const closed = new Promise<number>((resolve) => socket.once('close', () => resolve(performance.now())));
  await new Promise<void>((resolve) => socket.once('connect', resolve));
  socket.write(['POST /v1/keys HTTP/1.1', 'Host: 127.0.0.1', `Authorization: Bearer ${server.adminKey}`, 'Content-Type: application/json', `Content-Length: ${Buffer.byteLength(body)}`, '', body.slice(0, 7)].join('\r\n'));
  // Let the server read the headers and start the request before the signal.
  await new Promise((r) => setTimeout(r, 300));

  const stopping = server.stop('SIGTERM');
  await waitFor(() => refusesConnections(server.url), 5000);
  assert.equal(server.child.exitCode, null, 'serve waits for the request in flight');

  socket.write(body.slice(7));
  // The server closes the connection once the response is sent.
  const socketClosedAt = await closed;
  const response = Buffer.concat(chunks).toString('utf8');
  const [head = '', payload = ''] = response.split('\r\n\r\n');
  assert.match(head, /^HTTP\/1\.1 201 /, `${response}\n--- serve output ---\n${server.output()}`);
  const created = JSON.parse(payload) as { id: string; secret: string; name: string };
  assert.equal(created.name, 'in-flight');

  const exit = await stopping;
  assert.deepEqual({ code: exit.code, signal: exit.signal }, { code: 0, signal: null }, server.output());
  const exitedAfterResponseMs = performance.now() - socketClosedAt;
  assert.ok(exitedAfterResponseMs < PROMPT_EXIT_MS, `exited ${Math.round(exitedAfterResponseMs)} ms after the last response\n${server.output()}`);
  assert.match(server.output(), /"signal":"SIGTERM".*"msg":"shutting down"/);

  // The store is consistent: a restart serves the key committed during shutdown.
  const restarted = await startServe(t, { env: server.env });
  const got = await httpRequest(`${restarted.url}/v1/keys/${created.id}`, { key: restarted.adminKey });
  assert.equal(got.status, 200, got.text);
  assert.equal((await httpRequest(`${restarted.url}/v1/keys`, { key: created.secret })).status, 200);
});

test('SIGTERM and SIGINT stop an idle serve with exit code 0 promptly and the store reopens with its keys', async (t) => {
  const first = await startServe(t);
  const created = await httpRequest(`${first.url}/v1/keys`, { method: 'POST', key: first.adminKey, body: { name: 'kept', scopes: ['keys:read'] } });
  assert.equal(created.status, 201);
  const key = created.json<{ id: string; secret: string }>();

  // An idle keep-alive connection must not hold shutdown up.
  const agent = new http.Agent({ keepAlive: true });
  t.after(() => agent.destroy());
  await new Promise<void>((resolve, reject) => {
    http.get(`${first.url}/healthz`, { agent }, (res) => res.resume().on('end', resolve)).on('error', reject);
  });
  const term = await first.stop('SIGTERM');
  assert.deepEqual({ code: term.code, signal: term.signal }, { code: 0, signal: null });
  assert.ok(term.ms < PROMPT_EXIT_MS, `SIGTERM took ${Math.round(term.ms)} ms`);

  const second = await startServe(t, { env: first.env });
  const listed = await httpRequest(`${second.url}/v1/keys`, { key: key.secret });
  assert.equal(listed.status, 200, listed.text);
  assert.deepEqual(listed.json<{ data: Array<{ id: string }> }>().data.map((k) => k.id).slice(1), [key.id]);
  const int = await second.stop('SIGINT');
  assert.deepEqual({ code: int.code, signal: int.signal }, { code: 0, signal: null });
  assert.ok(int.ms < PROMPT_EXIT_MS, `SIGINT took ${Math.round(int.ms)} ms`);
  assert.match(second.output(), /"signal":"SIGINT"/);
});
