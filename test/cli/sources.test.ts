import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runCli, runCliJson, startServe } from '../harness/processes.ts';
import type { Env } from '../harness/processes.ts';

interface Source {
  id: string;
  url: string;
  secret?: string;
  dedupWindowSeconds: number;
}

test('sources can be created, listed, read, updated, revealed, rotated and deleted from the CLI', async (t) => {
  const server = await startServe(t);
  const env: Env = { PORTCULLIS_URL: server.url, PORTCULLIS_DATA_DIR: server.dataDir };
  const json = <T>(args: string[]): Promise<T> => runCliJson<T>(args, env);

  const created = await json<Source>(['sources', 'create', '--name', 'GitHub', '--type', 'github', '--slug', 'gh', '--dedup-window', '3600']);
  assert.equal(created.url, '/in/gh');
  assert.equal(created.dedupWindowSeconds, 3600);
  assert.match(created.secret!, /^[0-9A-Za-z]{40}$/);

  const table = await runCli(['sources', 'list'], env);
  assert.equal(table.code, 0, table.stderr);
  assert.match(table.stdout, /^ID +SLUG +NAME +TYPE +URL/);
  assert.match(table.stdout, new RegExp(`${created.id}\\s+gh\\s+GitHub\\s+github\\s+/in/gh`));
  assert.ok(!table.stdout.includes(created.secret!));

  assert.equal((await json<Source>(['sources', 'update', created.id, '--dedup-window', '600', '--slug', 'none'])).url, `/in/${created.id}`);
  assert.equal((await json<{ secret: string }>(['sources', 'reveal-secret', created.id])).secret, created.secret);
  const rotated = await json<Source & { previousSecretExpiresAt: string | null }>(['sources', 'rotate-secret', created.id, '--grace', '60', '--secret', 'a-new-secret-value']);
  assert.equal(rotated.secret, 'a-new-secret-value');
  assert.ok(rotated.previousSecretExpiresAt);
  assert.equal((await json<{ previousSecret: string }>(['sources', 'reveal-secret', created.id])).previousSecret, created.secret);

  const stripe = await runCli(['sources', 'create', '--name', 'Stripe', '--type', 'stripe'], env);
  assert.notEqual(stripe.code, 0);
  assert.match(stripe.stderr, /400 validation-failed: .*secret is required for stripe/);

  const deleted = await runCli(['sources', 'delete', created.id], env);
  assert.equal(deleted.code, 0, deleted.stderr);
  assert.equal(deleted.stdout, `deleted ${created.id}\n`);
  const gone = await runCli(['sources', 'get', created.id], env);
  assert.notEqual(gone.code, 0);
  assert.match(gone.stderr, /404 not-found/);
});
