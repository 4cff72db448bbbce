import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import { runCli, runCliJson, startServe } from '../harness/processes.ts';
import type { CliResult, Env } from '../harness/processes.ts';

interface Key {
  id: string;
  name: string;
  customer: string | null;
  metadata: Record<string, unknown>;
  scopes: string[];
  prefix: string;
  status: string;
  secret?: string;
}

/** A running server and a CLI pointed at it, authenticating with ./data/admin.key like the quick start. */
async function quickStart(t: TestContext): Promise<{ env: Env; cli: (args: string[], env?: Env) => Promise<CliResult>; json: <T>(args: string[], env?: Env) => Promise<T> }> {
  const server = await startServe(t);
  const base: Env = { PORTCULLIS_URL: server.url, PORTCULLIS_DATA_DIR: server.dataDir };
  return {
    env: base,
    cli: (args, env = {}) => runCli(args, { ...base, ...env }),
    json: <T>(args: string[], env: Env = {}) => runCliJson<T>(args, { ...base, ...env }),
  };
}

function assertRefused(res: CliResult, status: number, code: string): void {
  assert.notEqual(res.code, 0, `expected a failure, got: ${res.stdout}`);
  assert.match(res.stderr, new RegExp(`^error: ${status} ${code}: .*\\(request req_`, 'm'));
  assert.equal(res.stdout, '');
  assert.doesNotMatch(res.stderr, /\n\s+at /, 'no stack trace');
}

test('a scoped key created from the CLI works, keeps working through a rotation grace period, and stops when revoked', async (t) => {
  const { cli, json } = await quickStart(t);

  const created = await json<Key>(['keys', 'create', '--name', 'x', '--scope', 'keys:read']);
  assert.match(created.id, /^key_/);
  assert.match(created.secret!, /^pcl_[0-9A-Za-z]{36}$/);
  assert.deepEqual(created.scopes, ['keys:read']);
  const oldSecret = created.secret!;

  const seen = await json<{ data: Key[] }>(['keys', 'list', '--api-key', oldSecret]);
  assert.ok(seen.data.some((k) => k.id === created.id));
  assert.ok(!JSON.stringify(seen).includes(oldSecret), 'a listed key shows no secret');

  const rotated = await json<Key>(['keys', 'rotate', created.id, '--grace', '60']);
  assert.equal(rotated.id, created.id);
  assert.match(rotated.secret!, /^pcl_[0-9A-Za-z]{36}$/);
  assert.notEqual(rotated.secret, oldSecret);
  const newSecret = rotated.secret!;
  for (const res of await Promise.all([oldSecret, newSecret].map((secret) => cli(['keys', 'get', created.id, '--json', '--api-key', secret])))) {
    assert.equal(res.code, 0, res.stderr);
    assert.equal((JSON.parse(res.stdout) as Key).id, created.id);
  }

  const revoked = await json<Key>(['keys', 'revoke', created.id]);
  assert.equal(revoked.status, 'revoked');
  const refused = await Promise.all([
    cli(['keys', 'list', '--api-key', oldSecret]),
    cli(['keys', 'list', '--api-key', newSecret]),
    // PORTCULLIS_API_KEY is the other way to pass a key.
    cli(['keys', 'list'], { PORTCULLIS_API_KEY: newSecret }),
  ]);
  for (const res of refused) assertRefused(res, 401, 'unauthorized');
});

test('without --json the CLI prints readable tables and records; get and update work', async (t) => {
  const { cli, json } = await quickStart(t);
  const created = await json<Key>(['keys', 'create', '--name', 'reporting', '--scope', 'keys:read', '--customer', 'cus_42', '--metadata', '{"plan":"pro"}']);

  const [table, record] = await Promise.all([cli(['keys', 'list']), cli(['keys', 'get', created.id])]);
  assert.equal(table.code, 0, table.stderr);
  const [header, ...rows] = table.stdout.trimEnd().split('\n');
  assert.match(header!, /^ID\s+NAME\s+CUSTOMER\s+PREFIX\s+SCOPES\s+STATUS\s+EXPIRESAT\s+CREATEDAT$/);
  assert.equal(rows.length, 2);
  const row = rows.find((r) => r.startsWith(created.id));
  assert.ok(row, table.stdout);
  assert.match(row, new RegExp(`^${created.id}\\s+reporting\\s+cus_42\\s+${created.prefix}\\s+keys:read\\s+active\\s+-\\s+\\d{4}-`));
  assert.ok(rows.some((r) => /^key_\w+\s+admin\s+-\s+pcl_\w+\s+admin\s+active\s/.test(r)), table.stdout);

  assert.equal(record.code, 0, record.stderr);
  assert.match(record.stdout, new RegExp(`^id\\s+${created.id}$`, 'm'));
  assert.match(record.stdout, /^name\s+reporting$/m);
  assert.match(record.stdout, /^metadata\s+\{"plan":"pro"\}$/m);
  assert.doesNotMatch(record.stdout, /^secret/m);

  const updated = await json<Key>(['keys', 'update', created.id, '--name', 'renamed', '--scope', 'keys:read,keys:write', '--customer', 'none', '--metadata', '{"plan":"team"}']);
  assert.equal(updated.name, 'renamed');
  assert.deepEqual(updated.scopes, ['keys:read', 'keys:write']);
  assert.equal(updated.customer, null);
  assert.deepEqual(updated.metadata, { plan: 'team' });
  const got = await json<Key>(['keys', 'get', created.id]);
  assert.deepEqual({ name: got.name, scopes: got.scopes, customer: got.customer }, { name: 'renamed', scopes: ['keys:read', 'keys:write'], customer: null });
});

test('a refused CLI call exits non-zero with the problem code on stderr', async (t) => {
  const { cli, json } = await quickStart(t);
  const reader = await json<Key>(['keys', 'create', '--name', 'reader', '--scope', 'keys:read']);

  const [denied, notFound, unknownScope, badFlag, badMetadata, noServer] = await Promise.all([
    cli(['keys', 'create', '--name', 'y', '--scope', 'keys:read', '--api-key', reader.secret!]),
    cli(['keys', 'get', 'key_00000000000000000000000000']),
    cli(['keys', 'create', '--name', 'z', '--scope', 'nothing:read']),
    cli(['keys', 'list', '--limit', 'many']),
    cli(['keys', 'create', '--name', 'z', '--scope', 'keys:read', '--metadata', '[1]']),
    runCli(['keys', 'list', '--url', 'http://127.0.0.1:1', '--api-key', reader.secret!]),
  ]);
  assertRefused(denied, 403, 'scope-missing');
  assert.match(denied.stderr, /keys:write/);
  assertRefused(notFound, 404, 'not-found');

  assert.notEqual(unknownScope.code, 0);
  assert.match(unknownScope.stderr, /^error: 400 /m);

  assert.notEqual(badFlag.code, 0);
  assert.match(badFlag.stderr, /^error: --limit must be a whole number$/m);
  assert.notEqual(badMetadata.code, 0);
  assert.match(badMetadata.stderr, /^error: --metadata must be a JSON object$/m);

  const after = await json<{ data: Key[] }>(['keys', 'list']);
  assert.equal(after.data.length, 2, 'refused creates stored nothing');

  assert.notEqual(noServer.code, 0);
  assert.match(noServer.stderr, /cannot reach the server/);
  assert.ok(!noServer.stderr.includes(reader.secret!));
});

test('the CLI sets and clears a key\'s rate-limit policy, and the server enforces it', async (t) => {
  const limits = { policies: { basic: { limit: 100, window: 60 }, tiny: { limit: 1, window: 3600 } } };
  const server = await startServe(t, { env: { PORTCULLIS_RATE_LIMITS: JSON.stringify(limits) } });
  const base: Env = { PORTCULLIS_URL: server.url, PORTCULLIS_DATA_DIR: server.dataDir };
  const json = <T>(args: string[], env: Env = {}): Promise<T> => runCliJson<T>(args, { ...base, ...env });

  const created = await json<Key & { rateLimitPolicy: string | null }>(['keys', 'create', '--name', 'x', '--scope', 'keys:read', '--rate-limit-policy', 'tiny']);
  assert.equal(created.rateLimitPolicy, 'tiny');
  assert.equal((await runCli(['keys', 'get', created.id, '--api-key', created.secret!], base)).code, 0);
  assertRefused(await runCli(['keys', 'get', created.id, '--api-key', created.secret!], base), 429, 'rate-limited');

  const cleared = await json<{ rateLimitPolicy: string | null }>(['keys', 'update', created.id, '--rate-limit-policy', 'default']);
  assert.equal(cleared.rateLimitPolicy, null);
  assert.equal((await runCli(['keys', 'get', created.id, '--api-key', created.secret!], base)).code, 0);
  assertRefused(await runCli(['keys', 'update', created.id, '--rate-limit-policy', 'platinum'], base), 400, 'validation-failed');
});

test('keys verify reads the key from stdin, prints the verdict, and exits 1 for an invalid key', async (t) => {
  const { cli, env } = await quickStart(t);
  const created = JSON.parse((await cli(['keys', 'create', '--name', 'v', '--scope', 'keys:read', '--quota', '10', '--json'])).stdout) as Key;
  const ok = await runCli(['keys', 'verify', '-', '--cost', '3', '--json'], env, { stdin: `${created.secret!}\n` });
  assert.equal(ok.code, 0, ok.stderr);
  const verdict = JSON.parse(ok.stdout) as { valid: boolean; keyId: string; quota: { remaining: number } };
  assert.equal(verdict.valid, true);
  assert.equal(verdict.keyId, created.id);
  assert.equal(verdict.quota.remaining, 7);

  const bad = await cli(['keys', 'verify', created.secret!, '--scope', 'keys:write']);
  assert.equal(bad.code, 1);
  assert.match(bad.stdout, /code\s+scope-missing/);
});
