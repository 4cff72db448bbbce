import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { createWorkspace, httpRequest, startServe, waitFor } from '../harness/processes.ts';

test('kill -9 of the server mid-delivery: the delivery is attempted again after its lease and completes, never lost', async (t) => {
  const bodies: string[] = [];
  let hold = true;
  const receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      bodies.push(Buffer.concat(chunks).toString());
      // The first attempt never gets an answer: the server is killed while waiting for it.
      if (hold) return;
      res.end('ok');
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  t.after(() => {
    receiver.closeAllConnections();
    return new Promise<void>((r) => receiver.close(() => r()));
  });
  const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;

  const ws = await createWorkspace(t);
  const env = { PORTCULLIS_SSRF_ALLOW: '127.0.0.0/8', PORTCULLIS_DELIVERY: JSON.stringify({ pollMs: 20, leaseMs: 4000 }) };
  let server = await startServe(t, { workspace: ws, env });
  const key = server.adminKey!;
  const ep = await httpRequest(`${server.url}/v1/endpoints`, { method: 'POST', key, body: { url, timeoutSeconds: 60 } });
  assert.equal(ep.status, 201, ep.text);
  const msg = await httpRequest(`${server.url}/v1/messages`, { method: 'POST', key, body: { eventType: 'order.created', payload: { n: 1 } } });
  assert.equal(msg.status, 202, msg.text);
  const messageId = msg.json<{ id: string }>().id;

  await waitFor(async () => bodies.length === 1, 10_000, 20);
  await server.stop('SIGKILL');
  hold = false;
  server = await startServe(t, { workspace: ws, env });
  const deliveries = async () => (await httpRequest(`${server.url}/v1/deliveries?subject=${messageId}`, { key })).json<{ data: { status: string; attempts: number }[] }>().data;
  await waitFor(async () => (await deliveries())[0]?.status === 'succeeded', 15_000, 50);
  assert.equal(bodies.length, 2);
  assert.equal(bodies[1], bodies[0]);
  assert.equal((await deliveries()).length, 1);
});
