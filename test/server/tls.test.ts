import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import { createWorkspace, freePort, httpRequest, runCli, startServe } from '../harness/processes.ts';
import type { Workspace } from '../harness/processes.ts';

function hasOpenssl(): boolean {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** A self-signed certificate for 127.0.0.1 and localhost, valid for a day. */
function selfSigned(ws: Workspace): { cert: string; key: string; pem: Buffer } {
  const cert = join(ws.dir, 'cert.pem');
  const key = join(ws.dir, 'key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost', '-days', '1', '-keyout', key, '-out', cert], { stdio: 'pipe' });
  return { cert, key, pem: readFileSync(cert) };
}

// openssl is needed to make a certificate. Outside CI its absence skips; in CI it fails.
function requireOpenssl(t: TestContext): boolean {
  if (hasOpenssl()) return true;
  if (process.env.CI === 'true') assert.fail('openssl is not installed; CI=true never skips the TLS tests');
  t.skip('openssl is not installed');
  return false;
}

test('serve --tls-cert/--tls-key answers https with the given certificate, which a client trusting it verifies', async (t) => {
  if (!requireOpenssl(t)) return;
  const ws = await createWorkspace(t);
  const tls = selfSigned(ws);
  const server = await startServe(t, { workspace: ws, args: ['--tls-cert', tls.cert, '--tls-key', tls.key], ca: tls.pem });
  assert.match(server.url, /^https:\/\/127\.0\.0\.1:\d+$/);

  const health = await httpRequest(`${server.url}/healthz`, { ca: tls.pem });
  assert.equal(health.status, 200);
  assert.equal(health.authorized, true);
  assert.deepEqual(health.json(), { status: 'ok' });
  const keys = await httpRequest(`${server.url}/v1/keys`, { ca: tls.pem, key: server.adminKey });
  assert.equal(keys.status, 200);

  // Without trusting the certificate the client refuses it: the server really presents it.
  await assert.rejects(httpRequest(`${server.url}/healthz`), (err: NodeJS.ErrnoException) => err.code === 'DEPTH_ZERO_SELF_SIGNED_CERT');
  // And plain http is not served on that port.
  await assert.rejects(httpRequest(`http://127.0.0.1:${server.port}/healthz`, { timeoutMs: 3000 }));
  assert.match(server.output(), /"url":"https:\/\/127\.0\.0\.1:\d+".*"msg":"listening"/);
});

test('PORTCULLIS_TLS_CERT and PORTCULLIS_TLS_KEY turn on https too', async (t) => {
  if (!requireOpenssl(t)) return;
  const ws = await createWorkspace(t);
  const tls = selfSigned(ws);
  const server = await startServe(t, { workspace: ws, env: { PORTCULLIS_TLS_CERT: tls.cert, PORTCULLIS_TLS_KEY: tls.key }, ca: tls.pem });
  const health = await httpRequest(`${server.url}/healthz`, { ca: tls.pem });
  assert.equal(health.status, 200);
  assert.equal(health.authorized, true);
});

test('over TLS every response carries Strict-Transport-Security; plain HTTP does not', async (t) => {
  if (!requireOpenssl(t)) return;
  const ws = await createWorkspace(t);
  const tls = selfSigned(ws);
  const server = await startServe(t, { workspace: ws, args: ['--tls-cert', tls.cert, '--tls-key', tls.key], ca: tls.pem });
  for (const path of ['/healthz', '/v1/keys', '/v1/nothing']) {
    const res = await httpRequest(`${server.url}${path}`, { ca: tls.pem });
    assert.equal(res.headers['strict-transport-security'], 'max-age=31536000; includeSubDomains', path);
  }
  const plain = await startServe(t);
  assert.equal((await httpRequest(`${plain.url}/healthz`)).headers['strict-transport-security'], undefined);
});

test('the HTTP redirect listener sends every request to the same path over HTTPS', async (t) => {
  if (!requireOpenssl(t)) return;
  const ws = await createWorkspace(t);
  const tls = selfSigned(ws);
  const redirectPort = await freePort();
  const server = await startServe(t, {
    workspace: ws,
    args: ['--tls-cert', tls.cert, '--tls-key', tls.key],
    env: { PORTCULLIS_HTTP_REDIRECT_LISTEN: `127.0.0.1:${redirectPort}` },
    ca: tls.pem,
  });
  const res = await httpRequest(`http://127.0.0.1:${redirectPort}/v1/keys?limit=5`, { method: 'POST', body: {} });
  assert.equal(res.status, 308);
  assert.equal(res.headers.location, `https://127.0.0.1:${server.port}/v1/keys?limit=5`);
  const followed = await httpRequest(res.headers.location!, { ca: tls.pem, key: server.adminKey });
  assert.equal(followed.status, 200);
  assert.equal(followed.authorized, true);
  const named = await httpRequest(`http://127.0.0.1:${redirectPort}/healthz`, { headers: { host: 'localhost:9999' } });
  assert.equal(named.headers.location, `https://localhost:${server.port}/healthz`);
});

test('a redirect listener without TLS is a configuration error', async (t) => {
  const ws = await createWorkspace(t);
  const result = await runCli(['serve'], { ...ws.env, PORTCULLIS_PORT: '0', PORTCULLIS_HTTP_REDIRECT_LISTEN: '127.0.0.1:0' });
  assert.notEqual(result.code, 0);
  assert.match(result.stderr, /httpRedirectListen \(PORTCULLIS_HTTP_REDIRECT_LISTEN\): needs tlsCert and tlsKey/);
});
