import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sign as octokitSign } from '@octokit/webhooks-methods';
import { httpRequest, runCli, runCliJson, startServe, waitFor } from '../harness/processes.ts';
import type { Env } from '../harness/processes.ts';

test('events can be listed, read and replayed from the CLI', async (t) => {
  const server = await startServe(t);
  const env: Env = { PORTCULLIS_URL: server.url, PORTCULLIS_DATA_DIR: server.dataDir };
  const src = await runCliJson<{ id: string; url: string }>(['sources', 'create', '--name', 'GitHub', '--type', 'github', '--secret', 'cli-events-secret'], env);
  const body = JSON.stringify({ action: 'opened', number: 1 });
  const delivered = await httpRequest(`${server.url}${src.url}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-github-event': 'issues', 'x-github-delivery': 'cli-1', 'x-hub-signature-256': await octokitSign('cli-events-secret', body) },
    body: JSON.parse(body),
  });
  assert.equal(delivered.status, 200, delivered.text);
  const eventId = delivered.json<{ eventId: string }>().eventId;

  // The server's own worker processes it (no steps configured yet: processed at once).
  await waitFor(async () => (await runCliJson<{ status: string }>(['events', 'get', eventId], env)).status === 'processed', 10_000, 100);
  const list = await runCliJson<{ data: { id: string; type: string }[] }>(['events', 'list', '--type', 'github.issues.*'], env);
  assert.deepEqual(list.data.map((e) => [e.id, e.type]), [[eventId, 'github.issues.opened']]);

  const shown = await runCli(['events', 'get', eventId], env);
  assert.equal(shown.code, 0, shown.stderr);
  assert.match(shown.stdout, /x-github-delivery\s+cli-1/);
  assert.match(shown.stdout, /attempt\s+outcome/i);
  assert.match(shown.stdout, /1\s+done/);

  const replayed = await runCli(['events', 'replay', eventId], env);
  assert.equal(replayed.code, 0, replayed.stderr);
  assert.match(replayed.stdout, new RegExp(`^queued ${eventId} again \\(job job_`));
  await waitFor(async () => (await runCliJson<{ jobs: unknown[]; status: string }>(['events', 'get', eventId], env)).jobs.length === 2, 10_000, 100);
  await waitFor(async () => (await runCliJson<{ status: string }>(['events', 'get', eventId], env)).status === 'processed', 10_000, 100);

  assert.deepEqual(await runCliJson(['events', 'replay-matching', '--status', 'processed', '--type', 'github.issues.*'], env), { replayed: 1 });
  const unfiltered = await runCli(['events', 'replay-matching'], env);
  assert.notEqual(unfiltered.code, 0);
  assert.match(unfiltered.stderr, /400 validation-failed/);
});
