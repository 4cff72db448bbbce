import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { runCli, runCliJson, startServe, waitFor } from '../harness/processes.ts';
import type { Env } from '../harness/processes.ts';

test('messages can be published and their deliveries inspected and retried from the CLI', async (t) => {
  let status = 500;
  let received = 0;
  const receiver = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      received++;
      res.statusCode = status;
      res.end();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => receiver.close(() => r())));
  const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;

  const server = await startServe(t, { env: { PORTCULLIS_SSRF_ALLOW: '127.0.0.0/8', PORTCULLIS_DELIVERY: JSON.stringify({ pollMs: 20 }) } });
  const env: Env = { PORTCULLIS_URL: server.url, PORTCULLIS_DATA_DIR: server.dataDir };
  const ep = await runCliJson<{ id: string }>(['endpoints', 'create', url, '--type', 'invoice.*', '--retry-schedule', '0'], env);

  const published = await runCli(['messages', 'create', '--type', 'invoice.paid', '--payload', '{"amount":42}'], env);
  assert.equal(published.code, 0, published.stderr);
  const messageId = /^published (msg_\w+) \(1 delivery queued\)\n$/.exec(published.stdout)?.[1];
  assert.ok(messageId, published.stdout);
  assert.deepEqual((await runCliJson<{ payload: unknown }>(['messages', 'get', messageId], env)).payload, { amount: 42 });
  assert.match((await runCli(['messages', 'list', '--type', 'invoice.*'], env)).stdout, new RegExp(`${messageId}\\s+invoice\\.paid`));

  await waitFor(async () => (await runCliJson<{ data: { status: string }[] }>(['deliveries', 'list', '--subject', messageId], env)).data[0]?.status === 'dead', 10_000, 100);
  const [dead] = (await runCliJson<{ data: { id: string; endpointId: string }[] }>(['deliveries', 'list', '--status', 'dead'], env)).data;
  assert.equal(dead!.endpointId, ep.id);
  const shown = await runCli(['deliveries', 'get', dead!.id], env);
  assert.equal(shown.code, 0, shown.stderr);
  assert.match(shown.stdout, /1\s+\S+\s+500\s+\d+\s+dead\s+HTTP 500/);

  status = 200;
  assert.equal((await runCli(['deliveries', 'retry', dead!.id], env)).stdout, `queued ${dead!.id} again\n`);
  await waitFor(async () => (await runCliJson<{ status: string }>(['deliveries', 'get', dead!.id], env)).status === 'succeeded', 10_000, 100);
  assert.equal(received, 2);
  assert.deepEqual(await runCliJson(['deliveries', 'retry-matching', '--status', 'dead'], env), { retried: 0 });
  const tested = await runCli(['endpoints', 'test', ep.id], env);
  assert.equal(tested.code, 0, tested.stderr);
  assert.match(tested.stdout, /statusCode\s+200/);
  assert.match(tested.stdout, /outcome\s+succeeded/);
  assert.deepEqual(await runCliJson(['endpoints', 'recover', ep.id, '--since', '2026-01-01T00:00:00Z'], env), { retried: 0 });
  const unfiltered = await runCli(['deliveries', 'retry-matching'], env);
  assert.notEqual(unfiltered.code, 0);
  assert.match(unfiltered.stderr, /400 validation-failed/);
});
