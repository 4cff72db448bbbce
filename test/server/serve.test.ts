import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { freePort, httpRequest, startServe } from '../harness/processes.ts';
import { TEST_ENGINE } from '../harness/engine.ts';

test('serve on an empty store initialises it and writes admin.key (0600), logging the path but never the key', async (t) => {
  const server = await startServe(t);
  const path = join(server.dataDir, 'admin.key');
  assert.equal(statSync(path).mode & 0o777, 0o600);
  const adminKey = readFileSync(path, 'utf8').trim();
  assert.match(adminKey, /^pcl_[0-9A-Za-z]{36}$/);

  const ready = await httpRequest(`${server.url}/readyz`);
  assert.equal(ready.status, 200);
  assert.deepEqual(ready.json(), { status: 'ready', checks: { store: 'ok' } });

  const listed = await httpRequest(`${server.url}/v1/keys`, { key: adminKey });
  assert.equal(listed.status, 200, listed.text);
  const keys = listed.json<{ data: Array<{ scopes: string[] }> }>().data;
  assert.equal(keys.length, 1);
  assert.deepEqual(keys[0]!.scopes, ['admin']);
  const created = await httpRequest(`${server.url}/v1/keys`, { method: 'POST', key: adminKey, body: { name: 'logged', scopes: ['keys:read'] } });
  assert.equal(created.status, 201, created.text);
  const secret = created.json<{ secret: string }>().secret;

  const { code } = await server.stop();
  assert.equal(code, 0);
  const log = server.output();
  const lines = log.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  const init = lines.find((l) => l.path === path);
  assert.ok(init, `a log line names ${path}:\n${log}`);
  assert.equal(lines.find((l) => l.msg === 'listening')?.engine, TEST_ENGINE);
  assert.ok(lines.some((l) => l.msg === 'request' && l.route === '/v1/keys' && l.status === 201), 'requests are logged');
  assert.ok(!log.includes(adminKey), 'the admin key never reaches the log');
  assert.ok(!log.includes(secret), 'a created key never reaches the log');
  assert.ok(!log.includes(adminKey.slice(4)), 'not even without its prefix');
});

test('serve on an initialised store writes no new admin key', async (t) => {
  const first = await startServe(t);
  const before = readFileSync(join(first.dataDir, 'admin.key'), 'utf8');
  assert.equal((await first.stop()).code, 0);
  const again = await startServe(t, { env: first.env });
  assert.equal(readFileSync(join(first.dataDir, 'admin.key'), 'utf8'), before);
  assert.ok(!again.output().includes('admin.key'), again.output());
  const listed = await httpRequest(`${again.url}/v1/keys`, { key: before.trim() });
  assert.equal(listed.status, 200);
  assert.equal(listed.json<{ data: unknown[] }>().data.length, 1);
});

test(`[${TEST_ENGINE}] a configured metrics listener serves /metrics without a key, while the API still needs metrics:read`, async (t) => {
  const metricsPort = await freePort();
  const server = await startServe(t, { env: { PORTCULLIS_METRICS_LISTEN: `127.0.0.1:${metricsPort}` } });
  await httpRequest(`${server.url}/v1/keys`, { key: server.adminKey });
  const open = await httpRequest(`http://127.0.0.1:${metricsPort}/metrics`);
  assert.equal(open.status, 200);
  assert.match(open.text, /portcullis_http_requests_total\{method="GET",route="\/v1\/keys",status="200"\} 1/);
  assert.equal((await httpRequest(`${server.url}/metrics`)).status, 401);
});
