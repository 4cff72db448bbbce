// The baseline of the delivery bench's throughput figure: a bare undici client
// posting the same bytes Portcullis sends (the body and headers of a real
// delivery the receiver kept, with a fresh webhook-id of the same length per
// request) to the same receiver with the same concurrency, keep-alive. No store,
// no claims, no signing: what is left is what any sender pays.
//
// Run as its own process, pinned like the server. Options come as JSON in
// BENCH_BASELINE. It first sends `warm` requests (opening its connections and
// warming V8; the receiver counts them before its clock starts), then asks the
// receiver to start its clock (`POST /_bench/start`), then sends `messages`
// requests, `concurrency` at a time, and prints one JSON line with what it did (and its own CPU time while measured).
import { Pool } from 'undici';

interface BaselineOptions {
  origin: string;
  path: string;
  body: string;
  headers: Record<string, string>;
  concurrency: number;
  warm: number;
  messages: number;
}

const o = JSON.parse(process.env.BENCH_BASELINE ?? '') as BaselineOptions;
const pool = new Pool(o.origin, { connections: o.concurrency, pipelining: 1 });
const body = Buffer.from(o.body);
const idPrefix = 'msg_bench';
const idLength = (o.headers['webhook-id'] ?? 'msg_01jdx3m5a8q2v7k4r9t6w1y3zb').length;
let failed = 0;
let sent = 0;

async function post(n: number): Promise<void> {
  const id = `${idPrefix}${String(n).padStart(idLength - idPrefix.length, '0')}`;
  const res = await pool.request({ path: o.path, method: 'POST', headers: { ...o.headers, 'webhook-id': id }, body });
  await res.body.dump();
  if (res.statusCode < 200 || res.statusCode >= 300) failed++;
  sent++;
}

/** Sends requests `from` … `to - 1`, `concurrency` at a time. */
async function send(from: number, to: number): Promise<void> {
  let next = from;
  const worker = async (): Promise<void> => {
    while (next < to) await post(next++);
  };
  await Promise.all(Array.from({ length: Math.min(o.concurrency, to - from) }, worker));
}

await send(0, o.warm);
const start = await pool.request({ path: '/_bench/start', method: 'POST' });
await start.body.dump();
const t0 = performance.now();
const cpu0 = process.cpuUsage();
await send(o.warm, o.warm + o.messages);
const elapsedMs = performance.now() - t0;
const cpu = process.cpuUsage(cpu0);
const cpuMs = (cpu.user + cpu.system) / 1000;
await pool.close();
process.stdout.write(`${JSON.stringify({ sent, failed, elapsedMs, cpuMs })}\n`);
