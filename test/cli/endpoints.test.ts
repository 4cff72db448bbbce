import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { runCli, runCliJson, startServe } from '../harness/processes.ts';
import type { Env } from '../harness/processes.ts';

interface Endpoint {
  id: string;
  url: string;
  eventTypes: string[];
  headers: Record<string, string>;
  sensitiveHeaders: string[];
  rateLimitPerSecond: number | null;
  timeoutSeconds: number;
  retrySchedule: number[] | null;
  enabled: boolean;
  previousSecretExpiresAt: string | null;
  secret?: string;
}

// Literal public addresses: the serve child has no injectable resolver, and there is no DNS here.
const URL_A = 'https://93.184.216.34/hooks/a';
const URL_B = 'https://93.184.216.35/hooks/b';

test('endpoints can be created, listed, read, updated, revealed, rotated and deleted from the CLI', async (t) => {
  const server = await startServe(t);
  const env: Env = { PORTCULLIS_URL: server.url, PORTCULLIS_DATA_DIR: server.dataDir };
  const json = <T>(args: string[]): Promise<T> => runCliJson<T>(args, env);

  const created = await json<Endpoint>([
    'endpoints', 'create', URL_A, '--type', 'github.push,github.pull_request.*', '--type', 'portcullis.*',
    '--header', 'X-Team: billing', '--header', 'Authorization: Bearer for-the-receiver', '--rate-limit', '20', '--timeout', '10', '--retry-schedule', '0,5,60', '--metadata', '{"customer":"acme"}',
  ]);
  assert.match(created.id, /^ep_/);
  assert.match(created.secret!, /^whsec_[A-Za-z0-9+/]{32}$/);
  assert.deepEqual(
    [created.url, created.eventTypes, created.headers, created.sensitiveHeaders, created.rateLimitPerSecond, created.timeoutSeconds, created.retrySchedule, created.enabled],
    [URL_A, ['github.push', 'github.pull_request.*', 'portcullis.*'], { 'x-team': 'billing' }, ['authorization'], 20, 10, [0, 5, 60], true],
  );
  // --header sets one and keeps the others; --remove-header removes one.
  const moved = await json<Endpoint>(['endpoints', 'update', created.id, '--header', 'X-Region: eu', '--remove-header', 'x-team']);
  assert.deepEqual([moved.headers, moved.sensitiveHeaders], [{ 'x-region': 'eu' }, ['authorization']]);

  const human = await runCli(['endpoints', 'create', URL_B, '--disabled'], env);
  assert.equal(human.code, 0, human.stderr);
  assert.match(human.stdout, /^secret +whsec_/m);
  assert.match(human.stderr, /shown once/);

  const table = await runCli(['endpoints', 'list'], env);
  assert.equal(table.code, 0, table.stderr);
  assert.match(table.stdout, /^ID +URL +ENABLED +DISABLEDREASON +EVENTTYPES/);
  assert.match(table.stdout, new RegExp(`${created.id}\\s+${URL_A}\\s+true\\s+-\\s+github.push,github.pull_request.\\*,portcullis.\\*`));
  assert.match(table.stdout, /93\.184\.216\.35\/hooks\/b\s+false/);
  assert.ok(!table.stdout.includes(created.secret!));
  assert.equal((await json<{ data: Endpoint[] }>(['endpoints', 'list', '--limit', '1'])).data.length, 1);

  const got = await json<Endpoint>(['endpoints', 'get', created.id]);
  assert.equal(got.secret, undefined);
  const updated = await json<Endpoint>(['endpoints', 'update', created.id, '--endpoint-url', URL_B, '--type', 'all', '--header', 'none', '--rate-limit', 'none', '--retry-schedule', 'default', '--disable']);
  assert.deepEqual(
    [updated.url, updated.eventTypes, updated.headers, updated.sensitiveHeaders, updated.rateLimitPerSecond, updated.retrySchedule, updated.enabled, updated.timeoutSeconds],
    [URL_B, [], {}, [], null, null, false, 10],
  );
  assert.equal((await json<Endpoint>(['endpoints', 'update', created.id, '--enable'])).enabled, true);

  assert.equal((await json<{ secret: string }>(['endpoints', 'reveal-secret', created.id])).secret, created.secret);
  const next = `whsec_${randomBytes(32).toString('base64')}`;
  const rotated = await json<Endpoint>(['endpoints', 'rotate-secret', created.id, '--secret', next]);
  assert.equal(rotated.secret, next);
  assert.ok(rotated.previousSecretExpiresAt, 'the previous secret signs too for the default grace period');
  assert.deepEqual(await json<{ secret: string; previousSecret: string }>(['endpoints', 'reveal-secret', created.id]), {
    secret: next,
    previousSecret: created.secret,
    previousSecretExpiresAt: rotated.previousSecretExpiresAt,
  });
  assert.equal((await json<Endpoint>(['endpoints', 'rotate-secret', created.id, '--grace', '0'])).previousSecretExpiresAt, null);

  const internal = await runCli(['endpoints', 'create', 'http://169.254.169.254/latest/meta-data/'], env);
  assert.notEqual(internal.code, 0);
  assert.match(internal.stderr, /400 validation-failed: body\.url: 169\.254\.169\.254 is a linkLocal address, which the SSRF guard refuses/);
  const scheme = await runCli(['endpoints', 'create', 'ftp://93.184.216.34/'], env);
  assert.match(scheme.stderr, /400 validation-failed: body\.url must be an absolute http/);
  const header = await runCli(['endpoints', 'create', URL_A, '--header', 'no-colon'], env);
  assert.notEqual(header.code, 0);
  assert.match(header.stderr, /--header must be "Name: value"/);

  const deleted = await runCli(['endpoints', 'delete', created.id], env);
  assert.equal(deleted.code, 0, deleted.stderr);
  assert.equal(deleted.stdout, `deleted ${created.id}\n`);
  const gone = await runCli(['endpoints', 'get', created.id], env);
  assert.notEqual(gone.code, 0);
  assert.match(gone.stderr, /404 not-found/);
});

test('the CLI reaches allow-listed internal endpoints only when the server allows their range', async (t) => {
  const server = await startServe(t, { env: { PORTCULLIS_SSRF_ALLOW: '10.20.0.0/16' } });
  const env: Env = { PORTCULLIS_URL: server.url, PORTCULLIS_DATA_DIR: server.dataDir };
  const inside = await runCliJson<Endpoint>(['endpoints', 'create', 'http://10.20.3.4:8080/hook'], env);
  assert.equal(inside.url, 'http://10.20.3.4:8080/hook');
  const outside = await runCli(['endpoints', 'create', 'http://10.21.0.1/hook'], env);
  assert.match(outside.stderr, /400 validation-failed: body\.url: 10\.21\.0\.1 is a private address/);
});
