import assert from 'node:assert/strict';
import { mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { createWorkspace, runCli } from '../harness/processes.ts';

// Nothing listens on port 1, so connecting is refused at once; these tests do
// not use the test engine and run the same on both passes.
const UNREACHABLE_POSTGRES = 'postgres://postgres@127.0.0.1:1/test';
const STARTUP_LIMIT_MS = 10_000;
const STACK_LINE = /\n\s+at [^\n]*[(:]\d+/;

test('serve, init and migrate exit non-zero quickly with "cannot reach the store" when PostgreSQL is down', async (t) => {
  const ws = await createWorkspace(t);
  const env = { PORTCULLIS_DATA_DIR: ws.dataDir, PORTCULLIS_DATABASE_URL: UNREACHABLE_POSTGRES, PORTCULLIS_PORT: '0' };
  const results = await Promise.all(['serve', 'init', 'migrate'].map(async (command) => ({ command, res: await runCli([command], env, { cwd: ws.dir, timeoutMs: 20_000 }) })));
  for (const { command, res } of results) {
    assert.equal(res.signal, null, `${command} hung and was killed`);
    assert.notEqual(res.code, 0, `${command} must fail`);
    assert.ok(res.ms < STARTUP_LIMIT_MS, `${command} took ${Math.round(res.ms)} ms`);
    assert.match(res.stderr, /^error: cannot reach the store \(ECONNREFUSED\)$/m, command);
    assert.doesNotMatch(res.stdout + res.stderr, STACK_LINE, `${command} printed a stack trace`);
    assert.doesNotMatch(res.stdout, /listening/, `${command} must not listen`);
  }
  assert.ok(!readdirSync(ws.dataDir).includes('admin.key'));
});

test('serve exits non-zero with "cannot reach the store" when the SQLite file cannot be opened', async (t) => {
  const ws = await createWorkspace(t);
  const notAFile = join(ws.dir, 'a-folder');
  mkdirSync(notAFile);
  const res = await runCli(['serve'], { PORTCULLIS_DATA_DIR: ws.dataDir, PORTCULLIS_DATABASE_URL: `sqlite:${notAFile}`, PORTCULLIS_PORT: '0' }, { cwd: ws.dir, timeoutMs: 20_000 });
  assert.equal(res.signal, null, 'serve hung and was killed');
  assert.notEqual(res.code, 0);
  assert.match(res.stderr, /^error: cannot reach the store \(SQLITE_CANTOPEN\)$/m);
  assert.doesNotMatch(res.stdout + res.stderr, STACK_LINE);
  assert.ok(res.ms < STARTUP_LIMIT_MS);
});
