import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { test } from 'node:test';
import { startHarness } from '../harness/startHarness.ts';

/** Sends raw bytes and returns everything the server answers before closing. */
function raw(base: string, bytes: string): Promise<string> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => socket.end(bytes));
    let out = '';
    socket.setEncoding('utf8').on('data', (s: string) => (out += s));
    socket.on('close', () => resolve(out));
    socket.on('error', reject);
  });
}

function problemOf(response: string): { status: number; body: Record<string, unknown>; headers: string } {
  const [head, body] = response.split('\r\n\r\n');
  return { status: Number(head!.split(' ')[1]), headers: head!, body: JSON.parse(body!) as Record<string, unknown> };
}

test('headers over 16 KiB are a 431 problem, a malformed request a 400 problem, and the server keeps serving', async (t) => {
  const h = await startHarness(t);
  const base = await h.listen();

  const huge = problemOf(await raw(base, `GET /v1/keys HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`));
  assert.equal(huge.status, 431);
  assert.equal(huge.body.code, 'headers-too-large');
  assert.match(huge.headers, /content-type: application\/problem\+json/i);
  assert.match(String(huge.body.requestId), /^req_/);

  for (const bad of ['NONSENSE\r\n\r\n', 'GET /v1/keys HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n', 'GET /v1/keys HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\n']) {
    const malformed = problemOf(await raw(base, bad));
    assert.equal(malformed.status, 400, bad);
    assert.equal(malformed.body.code, 'malformed-request');
  }
  assert.match(h.logText(), /request refused by the HTTP parser/);
  assert.equal((await fetch(`${base}/healthz`)).status, 200);
});
