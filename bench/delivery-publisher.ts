// The publisher of the delivery bench's latency figure: an open-loop client
// that sends `POST /v1/messages` at a fixed rate whatever the answers take
// (a slow answer never delays the next message: each is due at start + i/rate),
// over an undici keep-alive pool, and notes for each message its id (the
// `webhook-id` the receiver will see), when it was due and when its 202 arrived.
//
// Run as its own process on the load generator's core. Options come as JSON in
// BENCH_PUBLISH (env, so the API key never shows in `ps`). Messages due in the
// first `warmupS` seconds are sent but not reported. Prints one JSON line.
// Times are `performance.timeOrigin + performance.now()` (wall-clock ms), the
// receiver's clock too.
import { setTimeout as sleep } from 'node:timers/promises';
import { Pool } from 'undici';

interface PublishOptions {
  origin: string;
  authorization: string;
  /** The request body: `{"eventType": …, "payload": …}`. */
  body: string;
  rate: number;
  warmupS: number;
  durationS: number;
  connections: number;
}

const o = JSON.parse(process.env.BENCH_PUBLISH ?? '') as PublishOptions;
const pool = new Pool(o.origin, { connections: o.connections, pipelining: 1 });
const headers = { authorization: o.authorization, 'content-type': 'application/json' };
const body = Buffer.from(o.body);
const interval = 1000 / o.rate;
const warm = Math.round(o.warmupS * o.rate);
const total = warm + Math.round(o.durationS * o.rate);

/** [message id, due at, 202 received at] of each reported message. */
const results: [string, number, number][] = [];
const failures: string[] = [];
let warmIds = 0;

async function publish(i: number, due: number): Promise<void> {
  try {
    const res = await pool.request({ path: '/v1/messages', method: 'POST', headers, body });
    const text = await res.body.text();
    const accepted = performance.timeOrigin + performance.now();
    if (res.statusCode !== 202) {
      failures.push(`${res.statusCode} ${text.slice(0, 200)}`);
      return;
    }
    const { id } = JSON.parse(text) as { id: string };
    if (i < warm) warmIds++;
    else results.push([id, performance.timeOrigin + due, accepted]);
  } catch (err) {
    failures.push((err as Error).message);
  }
}

const pending: Promise<void>[] = [];
const start = performance.now() + 20;
for (let i = 0; i < total; i++) {
  const due = start + i * interval;
  const wait = due - performance.now();
  if (wait > 0) await sleep(wait);
  pending.push(publish(i, due));
}
await Promise.all(pending);
await pool.close();
process.stdout.write(`${JSON.stringify({ sent: total, warm, warmIds, failures: failures.length, firstFailures: failures.slice(0, 5), results })}\n`);
