import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { LightMyRequestResponse } from 'fastify';
import { startHarness } from '../harness/startHarness.ts';

const DEFAULT_CSP = "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

function assertSecurityHeaders(res: LightMyRequestResponse, what: string): void {
  assert.equal(res.headers['x-content-type-options'], 'nosniff', what);
  assert.equal(res.headers['x-frame-options'], 'DENY', what);
  assert.equal(res.headers['referrer-policy'], 'no-referrer', what);
  assert.ok(res.headers['content-security-policy'], what);
  assert.equal(res.headers['strict-transport-security'], undefined, `${what}: no HSTS over plain HTTP`);
}

test('every response carries the security headers: JSON, problems, HTML, the docs UI', async (t) => {
  const h = await startHarness(t);
  const responses = {
    json: await h.get('/v1/keys'),
    unauthorized: await h.get('/v1/keys', { key: null }),
    notFound: await h.get('/v1/nothing'),
    tooLarge: await h.post('/v1/keys', { payload: JSON.stringify({ name: 'x'.repeat(2_000_000) }), headers: { 'content-type': 'application/json' } }),
    health: await h.get('/healthz', { key: null }),
    problemsPage: await h.get('/docs/problems', { key: null }),
    docs: await h.get('/docs/static/index.html', { key: null }),
    openapi: await h.get('/openapi.json', { key: null }),
  };
  for (const [what, res] of Object.entries(responses)) assertSecurityHeaders(res, what);
  assert.equal(responses.tooLarge.statusCode, 413);
  assert.equal(responses.json.headers['content-security-policy'], DEFAULT_CSP);
  assert.equal(responses.problemsPage.headers['content-security-policy'], DEFAULT_CSP);
  assert.match(String(responses.problemsPage.headers['content-type']), /^text\/html/);
  // The docs UI runs its own scripts from this server, and nothing from elsewhere.
  const docsCsp = String(responses.docs.headers['content-security-policy']);
  assert.match(docsCsp, /script-src 'self'/);
  assert.doesNotMatch(docsCsp, /https:|\*/);
});

test('API answers are never cached: they may carry a secret', async (t) => {
  const h = await startHarness(t);
  const created = await h.post('/v1/keys', { body: { name: 'x', scopes: ['keys:read'] } });
  assert.equal(created.statusCode, 201);
  assert.equal(created.headers['cache-control'], 'no-store');
  assert.equal((await h.get('/v1/keys')).headers['cache-control'], 'no-store');
});

test('the body size limit is configurable and answered with 413, writing nothing', async (t) => {
  const h = await startHarness(t, { env: { PORTCULLIS_BODY_LIMIT: '2048' } });
  const res = await h.post('/v1/keys', { body: { name: 'big', scopes: ['keys:read'], metadata: { pad: 'x'.repeat(3000) } } });
  assert.equal(res.statusCode, 413);
  assert.equal(res.json().code, 'payload-too-large');
  assert.equal((await h.get('/v1/keys')).json().data.length, 1);
  assert.equal((await h.post('/v1/keys', { body: { name: 'small', scopes: ['keys:read'] } })).statusCode, 201);
});
