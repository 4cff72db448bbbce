import assert from 'node:assert/strict';
import { test } from 'node:test';
import { generateApiKey } from '../../src/core/apiKeys.ts';
import { startHarness } from './startHarness.ts';
import type { Harness } from './startHarness.ts';

export interface AuthSuiteOptions {
  method: string;
  /** Path to call; a function gets a harness to create what the path names. */
  url: string | ((h: Harness) => Promise<string>);
  /** The scope the route needs. */
  scope: string;
  body?: unknown;
}

function assertProblem(res: { statusCode: number; headers: Record<string, unknown>; json: () => unknown }, status: number, code: string): Record<string, unknown> {
  assert.equal(res.statusCode, status);
  assert.match(String(res.headers['content-type']), /^application\/problem\+json/);
  const body = res.json() as Record<string, unknown>;
  assert.equal(body.code, code);
  assert.equal(body.status, status);
  assert.equal(body.type, `/docs/problems#${code}`);
  assert.match(String(body.requestId), /^req_/);
  return body;
}

/** The shared security cases every authenticated route must pass. */
export function runAuthSuite(options: AuthSuiteOptions): void {
  const name = `${options.method} ${typeof options.url === 'string' ? options.url : '(created resource)'}`;
  test(`${name} refuses callers without a valid key holding ${options.scope}`, async (t) => {
    const h = await startHarness(t);
    const url = typeof options.url === 'string' ? options.url : await options.url(h);
    const call = (key: string | null, headers: Record<string, string> = {}) =>
      h.request(options.method, url, { key, headers, ...(options.body !== undefined ? { body: options.body } : {}) });

    await t.test('no key: 401 with WWW-Authenticate: Bearer', async () => {
      const res = await call(null);
      assertProblem(res, 401, 'unauthorized');
      assert.match(String(res.headers['www-authenticate']), /^Bearer/);
    });
    await t.test('not a Bearer header: 401', async () => {
      const res = await h.request(options.method, url, { key: null, headers: { authorization: `Basic ${Buffer.from('a:b').toString('base64')}` } });
      assertProblem(res, 401, 'unauthorized');
    });
    await t.test('bad checksum, wrong prefix, wrong length: 401', async () => {
      const good = generateApiKey();
      const last = good.at(-1) === 'A' ? 'B' : 'A';
      for (const bad of [good.slice(0, -1) + last, `xyz_${good.slice(4)}`, good.slice(0, -2), `${good}0`, 'pcl_']) {
        assertProblem(await call(bad), 401, 'unauthorized');
      }
    });
    await t.test('well-formed unknown key: 401', async () => {
      assertProblem(await call(generateApiKey()), 401, 'unauthorized');
    });
    await t.test('revoked key: 401', async () => {
      const key = await h.createKey([options.scope]);
      await h.revokeKey(key.id);
      assertProblem(await call(key.secret), 401, 'unauthorized');
    });
    await t.test('expired key: 401', async () => {
      const key = await h.createKey([options.scope], { expiresAt: new Date(h.clock().getTime() + 60_000).toISOString() });
      h.clock.advance(61_000);
      const body = assertProblem(await call(key.secret), 401, 'unauthorized');
      assert.match(String(body.detail), /expired/);
      h.clock.advance(-61_000);
    });
    await t.test(`key without ${options.scope}: 403 naming the scope`, async () => {
      const other = options.scope.startsWith('metrics') ? 'keys:read' : 'metrics:read';
      const key = await h.createKey([other]);
      const body = assertProblem(await call(key.secret), 403, 'scope-missing');
      assert.equal(body.scope, options.scope);
      assert.match(String(body.detail), new RegExp(options.scope));
    });
    await t.test(`key with ${options.scope}: passes authentication`, async () => {
      const key = await h.createKey([options.scope]);
      const res = await call(key.secret);
      assert.notEqual(res.statusCode, 401);
      assert.notEqual(res.statusCode, 403, res.body);
    });
  });
}

export { assertProblem };
