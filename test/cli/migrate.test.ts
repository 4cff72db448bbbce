import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { TEST_ENGINE } from '../harness/engine.ts';
import { REPO_ROOT, createWorkspace, runCli, runCliJson } from '../harness/processes.ts';

const MIGRATION_FILES = readdirSync(join(REPO_ROOT, 'src/storage', TEST_ENGINE, 'migrations')).filter((f) => /^\d+_.+\.sql$/.test(f));

test('migrate applies every migration to an empty store, then reports 0', async (t) => {
  assert.ok(MIGRATION_FILES.length > 0);
  const ws = await createWorkspace(t);
  const first = await runCliJson<{ applied: number; engine: string }>(['migrate'], ws.env, { cwd: ws.dir });
  assert.deepEqual(first, { applied: MIGRATION_FILES.length, engine: TEST_ENGINE });

  const second = await runCliJson<{ applied: number; engine: string }>(['migrate'], ws.env, { cwd: ws.dir });
  assert.deepEqual(second, { applied: 0, engine: TEST_ENGINE });

  const plain = await runCli(['migrate'], ws.env, { cwd: ws.dir });
  assert.equal(plain.code, 0, plain.stderr);
  assert.equal(plain.stdout, `0 migration(s) applied (${TEST_ENGINE})\n`);
});

test('init on a store that migrate prepared creates the first admin key', async (t) => {
  const ws = await createWorkspace(t);
  await runCliJson(['migrate'], ws.env, { cwd: ws.dir });
  const init = await runCliJson<{ adminKey: string | null }>(['init'], ws.env, { cwd: ws.dir });
  assert.match(String(init.adminKey), /^pcl_/);
  const again = await runCliJson<{ applied: number }>(['migrate'], ws.env, { cwd: ws.dir });
  assert.equal(again.applied, 0);
});
