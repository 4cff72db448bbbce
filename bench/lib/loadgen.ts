// The load generator, run as its own process (pinned by bench/lib/load.ts) so it
// never shares a core with the server. Options come as JSON in BENCH_LOAD (env,
// so an API key never shows in `ps`). stdout gets `measuring` when the warm-up
// is over and the counted run starts, then the result as one JSON line.
//
// autocannon's own latency histogram has 1 ms resolution, too coarse for a
// sub-millisecond loopback round trip, so the response times are taken from its
// per-response event (float milliseconds) and ranked here.
import { createHmac, randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import type { EventEmitter } from 'node:events';
import { DELIVERY_PLACEHOLDER, MEASURING } from './loadTypes.ts';
import type { LoadOptions, LoadResult } from './loadTypes.ts';

interface AutocannonResult {
  duration: number;
  errors: number;
  timeouts: number;
  non2xx: number;
  '2xx': number;
}

interface RequestSpec {
  method: string;
  headers: Record<string, string>;
  body?: string;
}

type Autocannon = (
  options: {
    url: string;
    connections: number;
    duration?: number;
    amount?: number;
    headers: Record<string, string>;
    timeout: number;
    method?: string;
    body?: string;
    requests?: { setupRequest: (request: RequestSpec) => RequestSpec }[];
  },
  done: (err: Error | null, result: AutocannonResult) => void,
) => EventEmitter;

const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;

/** Seconds before a request counts as timed out (autocannon's default). */
const REQUEST_TIMEOUT_S = 10;

/** A new GitHub delivery per request: signing happens here, on the load generator's core. */
function signedDelivery(template: string, secret: string): (request: RequestSpec) => RequestSpec {
  return (request) => {
    const delivery = randomUUID();
    const body = template.replaceAll(DELIVERY_PLACEHOLDER, delivery);
    const signature = `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
    return { ...request, method: 'POST', body, headers: { ...request.headers, 'x-github-delivery': delivery, 'x-hub-signature-256': signature } };
  };
}

function fire(options: LoadOptions, onResponse?: (status: number, ms: number) => void): Promise<AutocannonResult> {
  return new Promise((resolve, reject) => {
    const post = options.body === undefined ? {} : options.githubSecret === undefined ? { method: 'POST', body: options.body } : { requests: [{ setupRequest: signedDelivery(options.body, options.githubSecret) }] };
    const instance = autocannon(
      {
        url: options.url,
        connections: options.connections,
        headers: options.headers,
        timeout: REQUEST_TIMEOUT_S,
        ...post,
        ...(options.amount !== undefined ? { amount: options.amount } : { duration: options.durationS ?? 10 }),
      },
      (err, result) => (err ? reject(err) : resolve(result)),
    );
    if (onResponse) instance.on('response', (_client: unknown, status: number, _bytes: number, ms: number) => onResponse(status, ms));
  });
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

const options = JSON.parse(process.env.BENCH_LOAD ?? '{}') as LoadOptions;
if ((options.warmupS ?? 0) > 0) await fire({ ...options, amount: undefined, durationS: options.warmupS });

process.stdout.write(`${MEASURING}\n`);
let times = new Float64Array(1 << 16);
let count = 0;
const result = await fire(options, (status, ms) => {
  if (status < 200 || status >= 300) return;
  if (count === times.length) {
    const grown = new Float64Array(times.length * 2);
    grown.set(times);
    times = grown;
  }
  times[count++] = ms;
});
const sorted = times.slice(0, count).sort();
let sum = 0;
for (const t of sorted) sum += t;

const out: LoadResult = {
  durationS: result.duration,
  ok: result['2xx'],
  non2xx: result.non2xx,
  errors: result.errors + result.timeouts,
  reqPerSec: result['2xx'] / result.duration,
  latencyMs: { mean: sum / count, p50: percentile(sorted, 50), p90: percentile(sorted, 90), p99: percentile(sorted, 99), max: percentile(sorted, 100) },
};
process.stdout.write(`${JSON.stringify(out)}\n`);
