import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { LightMyRequestResponse } from 'fastify';
import { loadConfig } from '../../src/config/load.ts';
import { startHarness } from '../harness/startHarness.ts';

const APP = 'https://app.example.com';

function corsHeaders(res: LightMyRequestResponse): string[] {
  return Object.keys(res.headers).filter((h) => h.startsWith('access-control-'));
}

function preflight(origin: string, method = 'POST'): Record<string, string> {
  return { origin, 'access-control-request-method': method, 'access-control-request-headers': 'authorization, content-type' };
}

test('without configured origins there are no CORS headers and no preflight answers', async (t) => {
  const h = await startHarness(t);
  const res = await h.get('/v1/keys', { headers: { origin: APP } });
  assert.equal(res.statusCode, 200);
  assert.deepEqual(corsHeaders(res), []);
  const pre = await h.request('OPTIONS', '/v1/keys', { key: null, headers: preflight(APP) });
  assert.equal(pre.statusCode, 404);
  assert.deepEqual(corsHeaders(pre), []);
});

test('an allowed origin gets its own origin back, the exposed headers, and an answered preflight', async (t) => {
  const h = await startHarness(t, { env: { PORTCULLIS_CORS_ORIGINS: `${APP}, https://admin.example.com` } });
  const res = await h.get('/v1/keys', { headers: { origin: APP } });
  assert.equal(res.statusCode, 200);
  assert.equal(res.headers['access-control-allow-origin'], APP);
  assert.match(String(res.headers.vary), /Origin/i);
  assert.match(String(res.headers['access-control-expose-headers']), /x-request-id/);
  assert.match(String(res.headers['access-control-expose-headers']), /ratelimit/);
  assert.equal(res.headers['access-control-allow-credentials'], undefined);

  // The browser sends no Authorization on a preflight: it must not need a key.
  const pre = await h.request('OPTIONS', '/v1/keys', { key: null, headers: preflight(APP) });
  assert.equal(pre.statusCode, 204);
  assert.equal(pre.headers['access-control-allow-origin'], APP);
  assert.match(String(pre.headers['access-control-allow-methods']), /POST/);
  assert.match(String(pre.headers['access-control-allow-headers']), /authorization/);
  assert.match(String(pre.headers['access-control-allow-headers']), /idempotency-key/);
  assert.equal(pre.headers['access-control-max-age'], '600');
});

test('a disallowed origin gets no CORS header at all, and its preflight is not answered', async (t) => {
  const h = await startHarness(t, { env: { PORTCULLIS_CORS_ORIGINS: APP } });
  for (const origin of ['https://evil.example.com', 'https://app.example.com.evil.com', 'http://app.example.com', 'null', `${APP}:443`]) {
    const res = await h.get('/v1/keys', { headers: { origin } });
    assert.equal(res.statusCode, 200, origin);
    assert.deepEqual(corsHeaders(res), [], origin);
    const pre = await h.request('OPTIONS', '/v1/keys', { key: null, headers: preflight(origin) });
    assert.equal(pre.statusCode, 404, origin);
    assert.deepEqual(corsHeaders(pre), [], origin);
  }
});

test('credentials are allowed only when configured, and only for exact origins', async (t) => {
  const h = await startHarness(t, { env: { PORTCULLIS_CORS_ORIGINS: APP, PORTCULLIS_CORS_CREDENTIALS: 'true' } });
  const res = await h.get('/v1/keys', { headers: { origin: APP } });
  assert.equal(res.headers['access-control-allow-origin'], APP);
  assert.equal(res.headers['access-control-allow-credentials'], 'true');
  assert.deepEqual(corsHeaders(await h.get('/v1/keys', { headers: { origin: 'https://evil.example.com' } })), []);
});

test('a wildcard or a path is not an origin the configuration accepts', () => {
  for (const value of ['*', 'https://*.example.com', 'https://app.example.com/path', 'app.example.com']) {
    assert.throws(() => loadConfig({ env: { PORTCULLIS_CORS_ORIGINS: value } }), /corsOrigins/, value);
  }
});
