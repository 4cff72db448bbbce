// The receiver for the delivery bench: a plain node:http server, keep-alive,
// that answers every `POST /hooks` with 204 once it has read the body, counts
// the requests and notes when each one arrived against its `webhook-id`. Both
// sides of the bench (Portcullis's dispatcher and the bare undici client) post
// to it; it verifies nothing in the hot path (the bench checks one sample
// delivery's signature with the standardwebhooks package, once).
//
// Control routes (the orchestrator's, on the same server):
//   POST /_bench/reset?hold=1&record=1  forget everything; hold: keep the answers
//                                       of the requests that arrive from now on
//                                       (the sender's slots stay busy), record:
//                                       note each arrival time by webhook-id
//   POST /_bench/start                  the clock starts now; held answers go out
//   GET  /_bench/stats                  counts, times (ms, see `now` below) and this
//                                       process's CPU ms since the start
//   GET  /_bench/times                  { webhook-id: arrival ms } when recording
//   GET  /_bench/sample                 the first delivery since the reset: headers and body
//
// Times are `performance.timeOrigin + performance.now()`: wall-clock milliseconds
// with sub-millisecond resolution, comparable with the publisher's (another process
// on the same machine reading the same clock).
// Env: BENCH_PORT.
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';

const now = (): number => performance.timeOrigin + performance.now();

let hold = false;
let record = false;
let held: ServerResponse[] = [];
let count = 0;
let ids = new Set<string>();
let times = new Map<string, number>();
let startedAt: number | null = null;
let countAtStart = 0;
let cpuAtStart: NodeJS.CpuUsage | null = null;
let firstAt: number | null = null;
let lastAt: number | null = null;
let sample: { headers: Record<string, string | string[] | undefined>; body: string } | null = null;

function reset(url: URL): void {
  for (const res of held) res.writeHead(204).end();
  held = [];
  hold = url.searchParams.get('hold') === '1';
  record = url.searchParams.get('record') === '1';
  count = 0;
  ids = new Set();
  times = new Map();
  startedAt = null;
  countAtStart = 0;
  cpuAtStart = null;
  firstAt = null;
  lastAt = null;
  sample = null;
}

function json(res: ServerResponse, value: unknown): void {
  const body = JSON.stringify(value);
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

function hook(req: IncomingMessage, res: ServerResponse): void {
  const at = now();
  count++;
  firstAt ??= at;
  lastAt = at;
  const id = req.headers['webhook-id'];
  if (typeof id === 'string') {
    ids.add(id);
    if (record) times.set(id, at);
  }
  if (sample === null) {
    const chunks: Buffer[] = [];
    const headers = req.headers;
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      sample = { headers, body: Buffer.concat(chunks).toString('utf8') };
      answer(res);
    });
    return;
  }
  req.resume();
  req.on('end', () => answer(res));
}

function answer(res: ServerResponse): void {
  if (hold) held.push(res);
  else res.writeHead(204).end();
}

const server = createServer((req, res) => {
  if (req.method === 'POST' && req.url === '/hooks') return hook(req, res);
  const url = new URL(req.url ?? '/', 'http://receiver');
  req.resume();
  if (req.method === 'POST' && url.pathname === '/_bench/reset') {
    reset(url);
    return json(res, { ok: true });
  }
  if (req.method === 'POST' && url.pathname === '/_bench/start') {
    startedAt = now();
    countAtStart = count;
    cpuAtStart = process.cpuUsage();
    hold = false;
    const release = held;
    held = [];
    for (const r of release) r.writeHead(204).end();
    return json(res, { startedAt, released: release.length });
  }
  if (req.method === 'GET' && url.pathname === '/_bench/stats') {
    const cpu = cpuAtStart === null ? null : process.cpuUsage(cpuAtStart);
    const cpuMs = cpu === null ? null : (cpu.user + cpu.system) / 1000;
    return json(res, { now: now(), count, unique: ids.size, held: held.length, startedAt, countAtStart, cpuMs, firstAt, lastAt });
  }
  if (req.method === 'GET' && url.pathname === '/_bench/times') return json(res, Object.fromEntries(times));
  if (req.method === 'GET' && url.pathname === '/_bench/sample') return json(res, sample);
  if (req.method === 'GET' && url.pathname === '/healthz') return json(res, { ok: true });
  res.writeHead(404).end();
});
server.keepAliveTimeout = 120_000;
server.headersTimeout = 130_000;
server.requestTimeout = 0;
server.listen(Number(process.env.BENCH_PORT), '127.0.0.1');
process.once('SIGTERM', () => {
  for (const res of held) res.writeHead(204).end();
  server.closeAllConnections();
  server.close(() => process.exit(0));
});
