import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sign as octokitSign } from '@octokit/webhooks-methods';
import { httpRequest, runCli, runCliJson, startServe } from '../harness/processes.ts';
import type { Env } from '../harness/processes.ts';

interface Leased {
  receipt: string;
  deliveries: number;
  event: { id: string; type: string; bodyText: string };
}

test('a consumer group can be created, leased from, acked and nacked from the CLI', async (t) => {
  const server = await startServe(t);
  const env: Env = { PORTCULLIS_URL: server.url, PORTCULLIS_DATA_DIR: server.dataDir };
  const src = await runCliJson<{ id: string; url: string }>(['sources', 'create', '--name', 'GitHub', '--type', 'github', '--secret', 'cli-groups-secret'], env);
  const group = await runCliJson<{ id: string; types: string[] }>(['consumer-groups', 'create', '--name', 'ci', '--source', src.id, '--type', 'github.issues.*', '--type', 'github.push', '--visibility-timeout', '60'], env);
  assert.deepEqual(group.types, ['github.issues.*', 'github.push']);

  const deliver = async (delivery: string, event: string): Promise<string> => {
    const body = JSON.stringify({ action: 'opened', delivery });
    const res = await httpRequest(`${server.url}${src.url}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-github-event': event, 'x-github-delivery': delivery, 'x-hub-signature-256': await octokitSign('cli-groups-secret', body) },
      body: JSON.parse(body),
    });
    assert.equal(res.status, 200, res.text);
    return res.json<{ eventId: string }>().eventId;
  };
  const issue = await deliver('g-1', 'issues');
  await deliver('g-2', 'star');

  const table = await runCli(['consumer-groups', 'list'], env);
  assert.equal(table.code, 0, table.stderr);
  assert.match(table.stdout, /ci\s+src_\w+\s+github\.issues\.\*,github\.push/);

  const leased = await runCliJson<{ data: Leased[] }>(['consumer-groups', 'lease', 'ci', '--max', '5', '--wait', '10'], env);
  assert.deepEqual(leased.data.map((l) => [l.event.id, l.event.type, l.deliveries]), [[issue, 'github.issues.opened', 1]]);
  assert.equal(JSON.parse(leased.data[0]!.event.bodyText).delivery, 'g-1');

  const released = await runCli(['consumer-groups', 'nack', 'ci', leased.data[0]!.receipt], env);
  assert.equal(released.code, 0, released.stderr);
  assert.equal(released.stdout, 'released 1\n');
  const again = await runCli(['consumer-groups', 'lease', 'ci', '--wait', '10'], env);
  assert.equal(again.code, 0, again.stderr);
  const receipt = /(evt_\w+\.[\w-]+)\s+2\s+evt_/.exec(again.stdout)?.[1];
  assert.ok(receipt, again.stdout);

  const acked = await runCli(['consumer-groups', 'ack', 'ci', receipt, leased.data[0]!.receipt], env);
  assert.equal(acked.code, 0, acked.stderr);
  assert.match(acked.stdout, /^acknowledged 1\nstale evt_/);
  const detail = await runCliJson<{ pending: number }>(['consumer-groups', 'get', 'ci'], env);
  assert.equal(detail.pending, 0);

  const missing = await runCli(['consumer-groups', 'lease', 'nope'], env);
  assert.notEqual(missing.code, 0);
  assert.match(missing.stderr, /404 not-found/);
  const badWait = await runCli(['consumer-groups', 'lease', 'ci', '--wait', 'soon'], env);
  assert.notEqual(badWait.code, 0);
  assert.match(badWait.stderr, /--wait/);
  assert.deepEqual(await runCliJson(['consumer-groups', 'delete', group.id], env), { deleted: group.id });
});
