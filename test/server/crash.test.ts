import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sign as octokitSign } from '@octokit/webhooks-methods';
import { createWorkspace, httpRequest, startServe } from '../harness/processes.ts';
import type { ServeProcess } from '../harness/processes.ts';

const ROUNDS = 3;
const PER_ROUND = 120;
const SECRET = 'crash-test-github-secret';

interface Ack {
  delivery: string;
  eventId: string;
}

async function send(server: ServeProcess, delivery: string): Promise<Ack | null> {
  const payload = { action: 'opened', delivery };
  const body = JSON.stringify(payload);
  try {
    const res = await httpRequest(`${server.url}/in/gh`, {
      method: 'POST',
      body: payload,
      headers: { 'x-github-event': 'issues', 'x-github-delivery': delivery, 'x-hub-signature-256': await octokitSign(SECRET, body) },
      timeoutMs: 5000,
    });
    return res.status === 200 ? { delivery, eventId: res.json<{ eventId: string }>().eventId } : null;
  } catch {
    return null; // the server died under this request: not acknowledged
  }
}

test('kill -9 during bursts of webhooks: every acknowledged delivery is stored, none twice', async (t) => {
  const ws = await createWorkspace(t);
  let server = await startServe(t, { workspace: ws });
  const admin = server.adminKey!;
  const created = await httpRequest(`${server.url}/v1/sources`, { method: 'POST', key: admin, body: { name: 'GitHub', slug: 'gh', type: 'github', secret: SECRET } });
  assert.equal(created.status, 201, created.text);

  const acked = new Map<string, string>();
  let n = 0;
  for (let round = 1; round <= ROUNDS; round++) {
    const deliveries = Array.from({ length: PER_ROUND }, () => `crash-${++n}`);
    let firstAck!: () => void;
    const acknowledged = new Promise<void>((resolve) => (firstAck = resolve));
    const inFlight = deliveries.map(
      (d, i) =>
        new Promise<Ack | null>((resolve) =>
          setTimeout(() => {
            void send(server, d).then((ack) => {
              if (ack) firstAck();
              resolve(ack);
            });
          }, i % 40),
        ),
    );
    // Kill the server in the middle of the burst: once it has acknowledged something.
    await Promise.race([acknowledged, new Promise((r) => setTimeout(r, 3000))]);
    await server.stop('SIGKILL');
    for (const ack of await Promise.all(inFlight)) if (ack) acked.set(ack.delivery, ack.eventId);
    server = await startServe(t, { workspace: ws });
  }
  assert.ok(acked.size > 0, 'some deliveries were acknowledged before the kills');
  assert.ok(acked.size < ROUNDS * PER_ROUND, `the kills hit mid-burst (${acked.size} of ${ROUNDS * PER_ROUND} acknowledged)`);

  // Redelivering acknowledged deliveries yields the same events, not new ones.
  const sample = [...acked.keys()].slice(0, 20);
  for (const delivery of sample) {
    const again = await send(server, delivery);
    assert.equal(again?.eventId, acked.get(delivery), `redelivery of ${delivery}`);
  }

  const stored = new Map<string, string>();
  let cursor: string | null = null;
  do {
    const page = await httpRequest(`${server.url}/v1/events?limit=250${cursor ? `&cursor=${cursor}` : ''}`, { key: admin });
    const body = page.json<{ data: { id: string; deliveryId: string }[]; nextCursor: string | null }>();
    for (const e of body.data) {
      assert.ok(!stored.has(e.deliveryId), `delivery ${e.deliveryId} stored twice`);
      stored.set(e.deliveryId, e.id);
    }
    cursor = body.nextCursor;
  } while (cursor);
  for (const [delivery, eventId] of acked) assert.equal(stored.get(delivery), eventId, `acknowledged ${delivery} is stored as ${eventId}`);
});
