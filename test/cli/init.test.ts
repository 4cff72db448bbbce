import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { createWorkspace, runCli, runCliJson, startServe } from '../harness/processes.ts';

const KEY = /^pcl_[0-9A-Za-z]{36}$/;
const mode = (path: string): number => statSync(path).mode & 0o777;

test('init --json prints the first admin key once and writes admin.key and secret.key readable by the owner only', async (t) => {
  const ws = await createWorkspace(t);
  const res = await runCli(['init', '--json'], ws.env, { cwd: ws.dir });
  assert.equal(res.code, 0, res.stderr);
  const printed = JSON.parse(res.stdout) as { adminKey: string };
  assert.match(printed.adminKey, KEY);
  assert.equal(res.stdout.split(printed.adminKey).length - 1, 1, 'the key is printed exactly once');
  assert.ok(!res.stderr.includes(printed.adminKey));

  const adminKeyPath = join(ws.dataDir, 'admin.key');
  assert.equal(readFileSync(adminKeyPath, 'utf8').trim(), printed.adminKey);
  assert.equal(mode(adminKeyPath), 0o600);
  const secretKeyPath = join(ws.dataDir, 'secret.key');
  assert.ok(readFileSync(secretKeyPath, 'utf8').trim().length >= 32);
  assert.equal(mode(secretKeyPath), 0o600);
});

test('init uses ./data by default and, without --json, prints only the key on stdout', async (t) => {
  const ws = await createWorkspace(t);
  const { PORTCULLIS_DATA_DIR: _default, ...env } = ws.env;
  const res = await runCli(['init'], env, { cwd: ws.dir });
  assert.equal(res.code, 0, res.stderr);
  assert.match(res.stdout, /^pcl_[0-9A-Za-z]{36}\n$/);
  assert.equal(readFileSync(join(ws.dir, 'data', 'admin.key'), 'utf8'), res.stdout);
  assert.match(res.stderr, /admin\.key/);
  assert.ok(!res.stderr.includes(res.stdout.trim()));
});

test('running init again creates no second key and prints adminKey null', async (t) => {
  const ws = await createWorkspace(t);
  const first = await runCliJson<{ adminKey: string }>(['init'], ws.env, { cwd: ws.dir });
  const again = await runCli(['init', '--json'], ws.env, { cwd: ws.dir });
  assert.equal(again.code, 0, again.stderr);
  const second = JSON.parse(again.stdout) as { adminKey: unknown };
  assert.equal(second.adminKey, null);
  assert.ok(!again.stdout.includes(first.adminKey));
  assert.equal(readFileSync(join(ws.dataDir, 'admin.key'), 'utf8').trim(), first.adminKey, 'admin.key is not replaced');

  const plain = await runCli(['init'], ws.env, { cwd: ws.dir });
  assert.equal(plain.code, 0, plain.stderr);
  assert.equal(plain.stdout, '');
  assert.match(plain.stderr, /already initialised/);

  // serve on the initialised store keeps the one key, and the first key still works.
  const server = await startServe(t, { workspace: ws });
  assert.equal(server.adminKey, first.adminKey);
  const listed = await runCliJson<{ data: Array<{ scopes: string[] }> }>(['keys', 'list', '--url', server.url, '--api-key', first.adminKey], {}, { cwd: ws.dir });
  assert.equal(listed.data.length, 1);
  assert.deepEqual(listed.data[0]!.scopes, ['admin']);
});
