// delivery: outbound webhooks from the real server to a local receiver
// (bench/delivery-receiver.ts). Two figures:
//
// 1. Throughput: how fast the dispatcher drains a backlog of N published
//    messages (claim with a lease, load the message and endpoint, unseal the
//    secret, sign, POST through the SSRF-guarded undici client, record the
//    attempt and the outcome), against a bare undici client
//    (bench/delivery-baseline.ts) posting the same bytes with the same
//    concurrency to the same receiver, in interleaved pairs.
//    The backlog: the receiver holds its answers while the N messages are
//    published, so the dispatcher's slots stay busy with the first deliveries and
//    the rest wait in the store as pending deliveries; then the receiver answers
//    the held ones and starts its clock. Rate = deliveries arriving after the
//    start / (last arrival - start), the same definition for the baseline.
// 2. End-to-end latency: an open-loop publisher (bench/delivery-publisher.ts)
//    at a fixed rate; for each message, receiver arrival time minus the time
//    its 202 reached the publisher.
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Webhook } from 'standardwebhooks';
import { ROOT } from './keys-get.ts';
import type { Engine, Side } from './keys-get.ts';
import { runLoad } from './lib/load.ts';
import { dropSchema, postgresProblem } from './lib/postgres.ts';
import { CPUS, cpuSeconds, freePort, procStatusKb, startProcess, track, waitForHttp } from './lib/procs.ts';
import type { Managed } from './lib/procs.ts';
import { median, round } from './lib/stats.ts';
import { metricsOf, serverEnv, storeDir, sumOf } from './lib/subject.ts';

const CLI = join(ROOT, 'dist/src/cli/main.js');
const RECEIVER = join(ROOT, 'bench/delivery-receiver.ts');
const BASELINE = join(ROOT, 'bench/delivery-baseline.ts');
const PUBLISHER = join(ROOT, 'bench/delivery-publisher.ts');
const READY_TIMEOUT_MS = 60_000;
/** The issue's goals: throughput at half a bare undici client's or better; p99 end-to-end under 50 ms at 200 msg/s. */
export const DELIVERY_RATIO_GOAL = 0.5;
export const DELIVERY_P99_GOAL_MS = 50;
/** The endpoint's per-attempt timeout: held deliveries must be released well before it. */
const ENDPOINT_TIMEOUT_S = 60;
const HOLD_LIMIT_MS = 45_000;
/** Requests the baseline sends before the receiver's clock starts (opens its connections, warms V8). */
const BASELINE_WARM_REQUESTS = 1000;
/** Connections publishing the backlog (not measured). */
const PUBLISH_CONNECTIONS = 32;

export interface DeliveryOptions {
  engines: Engine[];
  /** Interleaved baseline/subject throughput pairs, and latency runs per pollMs setting, per engine. */
  pairs: number;
  /** Deliveries per throughput run. */
  messages: number;
  /** A discarded throughput run of this many deliveries per side first. */
  warmupMessages: number;
  /** `delivery.concurrency` and `delivery.perEndpointConcurrency` of the subject; the baseline's concurrency. */
  concurrency: number;
  /** Size of the message payload (JSON). */
  payloadBytes: number;
  /** Messages per second in the latency runs. */
  rate: number;
  /** Seconds per latency run. */
  durationS: number;
  /** Discarded seconds at the same rate before each latency run. */
  warmupS: number;
  /** A second latency series with the subject restarted with this `delivery.pollMs` (null: none). */
  lowPollMs: number | null;
  postgresUrl: string;
  /** Write a V8 CPU profile of the subject here (perturbs the figures: for finding hot spots only). */
  cpuProfDir: string | null;
}

export const DELIVERY_DEFAULTS: DeliveryOptions = {
  engines: ['sqlite', 'postgres'],
  pairs: 5,
  messages: 20_000,
  warmupMessages: 2000,
  concurrency: 64,
  payloadBytes: 1024,
  rate: 200,
  durationS: 10,
  warmupS: 2,
  lowPollMs: null,
  postgresUrl: process.env.PORTCULLIS_BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
  cpuProfDir: null,
};

/** The pollMs the subject runs with unless told otherwise (src/config/schema.ts). */
const DEFAULT_POLL_MS = 200;

export interface ThroughputRun {
  pair: number;
  side: Side;
  /** Deliveries that arrived after the receiver's clock started. */
  deliveries: number;
  seconds: number;
  perSec: number;
  /** CPU time of the sender (subject server, or baseline client) over the run's wall time. */
  senderCpuPercent: number | null;
  /** CPU time of the receiver from the start to the last arrival: near 100 means the receiver set the pace. */
  receiverCpuPercent: number | null;
  /** Subject: how fast the backlog was published (not part of the figure), and deliveries held when the clock started. */
  publishPerSec: number | null;
  heldAtStart: number | null;
}

export interface LatencyRun {
  pollMs: number;
  run: number;
  messages: number;
  /** Messages the receiver never got within the wait. */
  missing: number;
  /** Receiver arrival minus the publisher's 202. */
  e2eMs: Percentiles;
  /** The publish request: 202 received minus when it was due (open loop: queueing included). */
  publishMs: Percentiles;
  /** Receiver arrival minus when the publish request was due: the publisher's whole wait. */
  totalMs: Percentiles;
}

export interface Percentiles {
  min: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

export interface LatencySummary {
  pollMs: number;
  runs: number;
  /** Medians over the runs. */
  e2eMs: Percentiles;
  publishMs: Percentiles;
  totalMs: Percentiles;
  missing: number;
}

export interface DeliveryEngineResult {
  engine: Engine;
  skipped: string | null;
  storeFileSystem: string | null;
  /** The sample delivery verified with the standardwebhooks package, and its body was the published payload byte for byte. */
  signatureVerified: boolean;
  baselinePerSec: number | null;
  subjectPerSec: number | null;
  baselineCpuPercent: number | null;
  subjectCpuPercent: number | null;
  /** The receiver's CPU % during the baseline's and the subject's runs (medians). */
  receiverCpuPercent: { baseline: number | null; subject: number | null };
  /** Median subject deliveries/s over median baseline deliveries/s. */
  ratio: number | null;
  pairRatios: number[];
  publishPerSec: number | null;
  /** Attempts that were not a success (expected: none). */
  failedAttempts: number | null;
  subjectPeakRssMb: number | null;
  latency: LatencySummary[];
  throughputRuns: ThroughputRun[];
  latencyRuns: LatencyRun[];
}

export interface DeliveryResult {
  bench: 'delivery';
  options: DeliveryOptions;
  pinning: typeof CPUS;
  engines: DeliveryEngineResult[];
}

type Log = (message: string) => void;

/** An `invoice.paid`-style payload of about `bytes` bytes of JSON. */
export function invoicePayload(bytes: number): Record<string, unknown> {
  const payload = {
    type: 'invoice.paid',
    invoice: {
      id: 'in_1QmZ8h2eZvKYlo2C0aB1cD2e',
      customer: 'cus_R4nD0mCu5t0m3r',
      amountDue: 4200,
      amountPaid: 4200,
      currency: 'eur',
      status: 'paid',
      lines: [
        { id: 'il_1', description: 'Pro plan (monthly)', amount: 3900, quantity: 1 },
        { id: 'il_2', description: 'Extra seat', amount: 300, quantity: 1 },
      ],
      paidAt: '2026-11-29T21:41:35Z',
      metadata: { orderId: 'ord_8842', note: '' },
    },
  };
  const short = JSON.stringify(payload).length;
  payload.invoice.metadata.note = 'x'.repeat(Math.max(0, bytes - short));
  return payload;
}

interface ReceiverStats {
  now: number;
  count: number;
  unique: number;
  held: number;
  startedAt: number | null;
  countAtStart: number;
  cpuMs: number | null;
  firstAt: number | null;
  lastAt: number | null;
}

function receiverClient(base: string) {
  const call = async <T>(method: string, path: string): Promise<T> => {
    const res = await fetch(base + path, { method });
    if (!res.ok) throw new Error(`receiver ${method} ${path}: ${res.status}`);
    return (await res.json()) as T;
  };
  return {
    reset: (mode: { hold?: boolean; record?: boolean } = {}) => call<unknown>('POST', `/_bench/reset?hold=${mode.hold ? 1 : 0}&record=${mode.record ? 1 : 0}`),
    start: () => call<{ startedAt: number; released: number }>('POST', '/_bench/start'),
    stats: () => call<ReceiverStats>('GET', '/_bench/stats'),
    times: () => call<Record<string, number>>('GET', '/_bench/times'),
    sample: () => call<{ headers: Record<string, string | string[] | undefined>; body: string } | null>('GET', '/_bench/sample'),
    /** Polls until `done(stats)`, or throws after `timeoutMs`. */
    async until(done: (s: ReceiverStats) => boolean, timeoutMs: number, what: string): Promise<ReceiverStats> {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const s = await call<ReceiverStats>('GET', '/_bench/stats');
        if (done(s)) return s;
        if (Date.now() > deadline) throw new Error(`receiver: ${what} not reached within ${timeoutMs} ms (count ${s.count}, unique ${s.unique}, held ${s.held})`);
        await sleep(25);
      }
    },
  };
}
type Receiver = ReturnType<typeof receiverClient>;

/** Runs one of the bench's helper scripts pinned to `cpu`; resolves with its last stdout line, parsed. */
async function runScript<T>(script: string, envName: string, options: object, cpu: number | null): Promise<T> {
  const args = cpu === null ? [process.execPath, script] : ['taskset', '-c', String(cpu), process.execPath, script];
  const child = spawn(args[0]!, args.slice(1), { cwd: ROOT, env: { ...process.env, [envName]: JSON.stringify(options) }, stdio: ['ignore', 'pipe', 'pipe'] });
  track(child);
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
  child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  if (code !== 0) throw new Error(`${script} failed (exit ${code}): ${stderr.slice(-2000)}`);
  return JSON.parse(stdout.trim().split('\n').pop()!) as T;
}

function percentiles(values: number[]): Percentiles {
  const sorted = Float64Array.from(values).sort();
  const at = (p: number): number => (sorted.length === 0 ? Number.NaN : sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!);
  return { min: round(at(0), 3), p50: round(at(50), 3), p90: round(at(90), 3), p99: round(at(99), 3), max: round(at(100), 3) };
}

interface Subject {
  proc: Managed;
  base: string;
}

async function startSubject(engine: Engine, dir: string, storeEnv: Record<string, string>, options: DeliveryOptions, pollMs: number | null, tag: string): Promise<Subject> {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const delivery = { concurrency: options.concurrency, perEndpointConcurrency: options.concurrency, ...(pollMs === null ? {} : { pollMs }) };
  const proc = startProcess({
    name: `subject (${engine}${pollMs === null ? '' : `, pollMs ${pollMs}`})`,
    cpu: CPUS.server,
    command: process.execPath,
    args: [...(options.cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${options.cpuProfDir}`, `--cpu-prof-name=delivery-${engine}-subject-${tag}.cpuprofile`] : []), CLI, 'serve'],
    env: serverEnv({
      ...storeEnv,
      PORTCULLIS_PORT: String(port),
      PORTCULLIS_DATA_DIR: dir,
      PORTCULLIS_SSRF_ALLOW: '127.0.0.0/8',
      PORTCULLIS_DELIVERY: JSON.stringify(delivery),
    }),
    cwd: ROOT,
    stderrPath: join(dir, `subject-${tag}.stderr`),
  });
  await waitForHttp(`${base}/healthz`, proc, READY_TIMEOUT_MS);
  return { proc, base };
}

async function benchEngine(engine: Engine, options: DeliveryOptions, log: Log): Promise<DeliveryEngineResult> {
  const result: DeliveryEngineResult = {
    engine,
    skipped: null,
    storeFileSystem: null,
    signatureVerified: false,
    baselinePerSec: null,
    subjectPerSec: null,
    baselineCpuPercent: null,
    subjectCpuPercent: null,
    receiverCpuPercent: { baseline: null, subject: null },
    ratio: null,
    pairRatios: [],
    publishPerSec: null,
    failedAttempts: null,
    subjectPeakRssMb: null,
    latency: [],
    throughputRuns: [],
    latencyRuns: [],
  };
  if (engine === 'postgres') {
    const problem = await postgresProblem(options.postgresUrl);
    if (problem) {
      log(`postgres: skipped, cannot connect (${problem})`);
      return { ...result, skipped: `PostgreSQL unreachable: ${problem}` };
    }
  }
  const { dir, fileSystem } = storeDir('delivery', engine);
  result.storeFileSystem = engine === 'sqlite' ? fileSystem : null;
  const schema = engine === 'postgres' ? `bench_${randomBytes(6).toString('hex')}` : null;
  const storeEnv: Record<string, string> = schema ? { PORTCULLIS_DATABASE_URL: options.postgresUrl, PORTCULLIS_DATABASE_SCHEMA: schema } : {};
  const procs: Managed[] = [];
  try {
    // The receiver shares the load generator's core: both senders pay for it alike.
    const receiverPort = await freePort();
    const receiverBase = `http://127.0.0.1:${receiverPort}`;
    const receiverProc = startProcess({ name: 'receiver', cpu: CPUS.load, command: process.execPath, args: [RECEIVER], env: { ...process.env, BENCH_PORT: String(receiverPort) }, cwd: ROOT, stderrPath: join(dir, 'receiver.stderr') });
    procs.push(receiverProc);
    await waitForHttp(`${receiverBase}/healthz`, receiverProc, 10_000);
    const receiver = receiverClient(receiverBase);

    let subject = await startSubject(engine, dir, storeEnv, options, null, 'default');
    procs.push(subject.proc);
    const admin = readFileSync(join(dir, 'admin.key'), 'utf8').trim();
    const auth = { authorization: `Bearer ${admin}`, 'content-type': 'application/json' };
    const created = await fetch(`${subject.base}/v1/endpoints`, {
      method: 'POST',
      headers: auth,
      body: JSON.stringify({ url: `${receiverBase}/hooks`, description: 'bench receiver', eventTypes: ['invoice.*'], timeoutSeconds: ENDPOINT_TIMEOUT_S }),
    });
    if (created.status !== 201) throw new Error(`creating the bench endpoint failed: ${created.status} ${await created.text()}`);
    const endpoint = (await created.json()) as { id: string; secret: string };

    const payload = invoicePayload(options.payloadBytes);
    const payloadText = JSON.stringify(payload);
    const messageBody = JSON.stringify({ eventType: 'invoice.paid', payload });

    // One delivery, checked: it verifies with the standardwebhooks package and carries the payload byte for byte.
    await receiver.reset();
    const published = await fetch(`${subject.base}/v1/messages`, { method: 'POST', headers: auth, body: messageBody });
    if (published.status !== 202) throw new Error(`POST /v1/messages: ${published.status} ${await published.text()}`);
    const message = (await published.json()) as { id: string; deliveries: number };
    if (message.deliveries !== 1) throw new Error(`the message was routed to ${message.deliveries} endpoints, not 1`);
    await receiver.until((s) => s.count >= 1, 30_000, 'the first delivery');
    const sample = await receiver.sample();
    if (!sample) throw new Error('the receiver kept no sample delivery');
    const sampleHeaders: Record<string, string> = {};
    for (const [k, v] of Object.entries(sample.headers)) if (typeof v === 'string') sampleHeaders[k] = v;
    new Webhook(endpoint.secret).verify(sample.body, sampleHeaders);
    if (sample.body !== payloadText || sampleHeaders['webhook-id'] !== message.id) throw new Error('the sample delivery does not carry the published payload and message id');
    result.signatureVerified = true;
    log(`${engine}: a delivery verified with standardwebhooks (${Buffer.byteLength(sample.body)} bytes of payload)`);

    // The baseline posts the same bytes with the same headers (framing ones left to undici).
    const baselineHeaders = Object.fromEntries(Object.entries(sampleHeaders).filter(([k]) => !['host', 'connection', 'content-length', 'transfer-encoding'].includes(k)));

    let succeededSoFar = 1;
    const subjectMetrics = async (): Promise<string> => metricsOf(subject.base, admin);

    async function subjectThroughput(pair: number, messages: number): Promise<ThroughputRun> {
      await receiver.reset({ hold: true });
      const holdFrom = Date.now();
      // autocannon's own duration is whole ticks: the publishing rate is timed here.
      let publishFrom = 0;
      const publish = await runLoad({ url: `${subject.base}/v1/messages`, headers: auth, connections: PUBLISH_CONNECTIONS, amount: messages, body: messageBody }, CPUS.load, () => {
        publishFrom = performance.now();
      });
      const publishPerSec = publish.ok / ((performance.now() - publishFrom) / 1000);
      const expectHeld = Math.min(messages, options.concurrency);
      await receiver.until((s) => s.held >= expectHeld, 10_000, `${expectHeld} held deliveries`);
      if (Date.now() - holdFrom > HOLD_LIMIT_MS) {
        throw new Error(`publishing ${messages} messages took ${Date.now() - holdFrom} ms: the held deliveries near their ${ENDPOINT_TIMEOUT_S} s timeout; use fewer --messages`);
      }
      const cpuStart = cpuSeconds(subject.proc.pid);
      const wallStart = performance.now();
      const started = await receiver.start();
      const s = await receiver.until((x) => x.count >= messages, Math.max(120_000, messages * 20), `${messages} deliveries`);
      const wall = (performance.now() - wallStart) / 1000;
      const cpuEnd = cpuSeconds(subject.proc.pid);
      if (s.unique !== s.count) throw new Error(`the receiver got ${s.count} deliveries but ${s.unique} distinct webhook-ids`);
      // Wait until every outcome is saved, so the next run starts from an idle dispatcher.
      succeededSoFar += messages;
      const deadline = Date.now() + 60_000;
      while (sumOf(await subjectMetrics(), 'portcullis_delivery_attempts_total', 'outcome="succeeded"') < succeededSoFar) {
        if (Date.now() > deadline) throw new Error('the subject did not record every delivery as succeeded within 60 s');
        await sleep(50);
      }
      const deliveries = s.count - s.countAtStart;
      const seconds = (s.lastAt! - started.startedAt) / 1000;
      const receiverCpu = (await receiver.stats()).cpuMs;
      return {
        pair,
        side: 'subject',
        deliveries,
        seconds: round(seconds, 3),
        perSec: round(deliveries / seconds),
        senderCpuPercent: cpuStart !== null && cpuEnd !== null ? round((100 * (cpuEnd - cpuStart)) / wall, 1) : null,
        receiverCpuPercent: receiverCpu === null ? null : round(receiverCpu / (10 * seconds), 1),
        publishPerSec: round(publishPerSec),
        heldAtStart: started.released,
      };
    }

    async function baselineThroughput(pair: number, messages: number): Promise<ThroughputRun> {
      await receiver.reset();
      const out = await runScript<{ sent: number; failed: number; elapsedMs: number; cpuMs: number }>(
        BASELINE,
        'BENCH_BASELINE',
        { origin: receiverBase, path: '/hooks', body: sample!.body, headers: baselineHeaders, concurrency: options.concurrency, warm: BASELINE_WARM_REQUESTS, messages },
        CPUS.server,
      );
      if (out.failed > 0) throw new Error(`the baseline got ${out.failed} non-2xx answers`);
      const s = await receiver.stats();
      const deliveries = s.count - s.countAtStart;
      if (deliveries !== messages) throw new Error(`the receiver counted ${deliveries} baseline requests after the start, not ${messages}`);
      const seconds = (s.lastAt! - s.startedAt!) / 1000;
      return {
        pair,
        side: 'baseline',
        deliveries,
        seconds: round(seconds, 3),
        perSec: round(deliveries / seconds),
        senderCpuPercent: round((100 * out.cpuMs) / out.elapsedMs, 1),
        receiverCpuPercent: s.cpuMs === null ? null : round(s.cpuMs / (10 * seconds), 1),
        publishPerSec: null,
        heldAtStart: null,
      };
    }

    const describe = (r: ThroughputRun): string =>
      `${r.perSec} deliveries/s (${r.deliveries} in ${r.seconds} s)  sender cpu ${r.senderCpuPercent ?? '?'}%  receiver cpu ${r.receiverCpuPercent ?? '?'}%` + (r.publishPerSec !== null ? `  backlog published at ${r.publishPerSec} msg/s` : '');
    if (options.warmupMessages > 0) {
      log(`${engine} warm-up (discarded): baseline ${describe(await baselineThroughput(0, options.warmupMessages))}`);
      log(`${engine} warm-up (discarded): subject  ${describe(await subjectThroughput(0, options.warmupMessages))}`);
    }
    for (let pair = 1; pair <= options.pairs; pair++) {
      for (const side of ['baseline', 'subject'] as const) {
        const run = side === 'baseline' ? await baselineThroughput(pair, options.messages) : await subjectThroughput(pair, options.messages);
        result.throughputRuns.push(run);
        log(`${engine} pair ${pair}/${options.pairs} ${side.padEnd(8)} ${describe(run)}`);
      }
    }

    async function latencyRun(pollMs: number, run: number): Promise<LatencyRun> {
      await receiver.reset({ record: true });
      const out = await runScript<{ sent: number; warmIds: number; failures: number; firstFailures: string[]; results: [string, number, number][] }>(
        PUBLISHER,
        'BENCH_PUBLISH',
        { origin: subject.base, authorization: `Bearer ${admin}`, body: messageBody, rate: options.rate, warmupS: options.warmupS, durationS: options.durationS, connections: 16 },
        CPUS.load,
      );
      if (out.failures > 0) throw new Error(`the publisher got ${out.failures} failures: ${out.firstFailures.join('; ')}`);
      const expected = out.warmIds + out.results.length;
      await receiver.until((s) => s.count >= expected, 30_000, `${expected} deliveries`).catch((err: Error) => log(`${engine}: ${err.message}`));
      const times = await receiver.times();
      const e2e: number[] = [];
      const total: number[] = [];
      let missing = 0;
      for (const [id, due, accepted] of out.results) {
        const at = times[id];
        if (at === undefined) missing++;
        else {
          e2e.push(at - accepted);
          total.push(at - due);
        }
      }
      succeededSoFar += expected - missing;
      return { pollMs, run, messages: out.results.length, missing, e2eMs: percentiles(e2e), publishMs: percentiles(out.results.map(([, due, accepted]) => accepted - due)), totalMs: percentiles(total) };
    }

    const latencySeries = async (pollMs: number): Promise<void> => {
      const runs: LatencyRun[] = [];
      for (let run = 1; run <= options.pairs; run++) {
        const r = await latencyRun(pollMs, run);
        runs.push(r);
        log(
          `${engine} latency pollMs ${pollMs} run ${run}/${options.pairs}: end-to-end p50 ${r.e2eMs.p50} ms  p99 ${r.e2eMs.p99} ms  max ${r.e2eMs.max} ms; publish p50 ${r.publishMs.p50} ms  p99 ${r.publishMs.p99} ms; missing ${r.missing}`,
        );
      }
      result.latencyRuns.push(...runs);
      const med = (pick: (r: LatencyRun) => Percentiles): Percentiles => ({
        min: round(median(runs.map((r) => pick(r).min)), 3),
        p50: round(median(runs.map((r) => pick(r).p50)), 3),
        p90: round(median(runs.map((r) => pick(r).p90)), 3),
        p99: round(median(runs.map((r) => pick(r).p99)), 3),
        max: round(median(runs.map((r) => pick(r).max)), 3),
      });
      result.latency.push({ pollMs, runs: runs.length, e2eMs: med((r) => r.e2eMs), publishMs: med((r) => r.publishMs), totalMs: med((r) => r.totalMs), missing: runs.reduce((n, r) => n + r.missing, 0) });
    };
    await latencySeries(DEFAULT_POLL_MS);

    const final = await subjectMetrics();
    result.failedAttempts = sumOf(final, 'portcullis_delivery_attempts_total') - sumOf(final, 'portcullis_delivery_attempts_total', 'outcome="succeeded"');
    const rssKb = procStatusKb(subject.proc.pid, 'VmHWM');
    result.subjectPeakRssMb = rssKb === null ? null : round(rssKb / 1024, 1);

    if (options.lowPollMs !== null && options.lowPollMs !== DEFAULT_POLL_MS) {
      // The same store and endpoint, the subject restarted with a shorter idle poll.
      await subject.proc.stop();
      subject = await startSubject(engine, dir, storeEnv, options, options.lowPollMs, `poll${options.lowPollMs}`);
      procs.push(subject.proc);
      succeededSoFar = 0;
      await latencySeries(options.lowPollMs);
      const after = await subjectMetrics();
      result.failedAttempts += sumOf(after, 'portcullis_delivery_attempts_total') - sumOf(after, 'portcullis_delivery_attempts_total', 'outcome="succeeded"');
    }

    const side = (s: Side) => result.throughputRuns.filter((r) => r.side === s);
    result.baselinePerSec = round(median(side('baseline').map((r) => r.perSec)));
    result.subjectPerSec = round(median(side('subject').map((r) => r.perSec)));
    const cpu = (s: Side) => side(s).map((r) => r.senderCpuPercent).filter((c): c is number => c !== null);
    result.baselineCpuPercent = cpu('baseline').length > 0 ? round(median(cpu('baseline')), 1) : null;
    result.subjectCpuPercent = cpu('subject').length > 0 ? round(median(cpu('subject')), 1) : null;
    const rcpu = (s: Side): number | null => {
      const values = side(s).map((r) => r.receiverCpuPercent).filter((c): c is number => c !== null);
      return values.length > 0 ? round(median(values), 1) : null;
    };
    result.receiverCpuPercent = { baseline: rcpu('baseline'), subject: rcpu('subject') };
    result.ratio = round(result.subjectPerSec / result.baselinePerSec, 3);
    for (let pair = 1; pair <= options.pairs; pair++) {
      const b = result.throughputRuns.find((r) => r.pair === pair && r.side === 'baseline')!;
      const s = result.throughputRuns.find((r) => r.pair === pair && r.side === 'subject')!;
      result.pairRatios.push(round(s.perSec / b.perSec, 3));
    }
    result.publishPerSec = round(median(side('subject').map((r) => r.publishPerSec ?? Number.NaN)));
    return result;
  } finally {
    await Promise.all(procs.map((p) => p.stop()));
    if (schema) await dropSchema(options.postgresUrl, schema).catch((err: Error) => log(`could not drop schema ${schema}: ${err.message}`));
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function runDeliveryBench(options: DeliveryOptions, log: Log): Promise<DeliveryResult> {
  log('building dist/ (npm run build)…');
  execFileSync(process.execPath, [join(ROOT, 'scripts/build.ts')], { cwd: ROOT, stdio: 'inherit' });
  const engines: DeliveryEngineResult[] = [];
  for (const engine of options.engines) engines.push(await benchEngine(engine, options, log));
  return { bench: 'delivery', options, pinning: CPUS, engines };
}

const fmt = (n: number | null | undefined, digits = 0): string =>
  n === null || n === undefined || Number.isNaN(n) ? '–' : n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

/** The human summary written next to the JSON. */
export function deliveryMarkdown(result: DeliveryResult): string {
  const o = result.options;
  const lines = [
    `Throughput: a backlog of ${fmt(o.messages)} published \`invoice.paid\` messages (${fmt(o.payloadBytes)}-byte JSON payload) drained by the dispatcher to one endpoint ` +
      `(\`delivery.concurrency\` = \`perEndpointConcurrency\` = ${o.concurrency}: claimed, signed, POSTed through the SSRF-guarded client, outcome recorded) vs a bare undici Pool posting the same bytes and headers with the same concurrency, ` +
      `both to the same receiver (204, counts arrivals). ${o.pairs} interleaved pairs per engine after a discarded round of ${fmt(o.warmupMessages)}; ` +
      `deliveries/s = arrivals after the receiver's clock started / (last arrival − start). Sender on CPU ${result.pinning.server ?? 'any'}, receiver and publishers on CPU ${result.pinning.load ?? 'any'}. Medians over the runs.`,
    '',
    '| engine | baseline deliveries/s | subject deliveries/s | ratio (medians) | goal ≥ ' + DELIVERY_RATIO_GOAL + ' | per-pair ratios | sender CPU % (baseline / subject) | receiver CPU % (baseline / subject) | backlog published msg/s | failed attempts | signature verified | subject peak RSS MB |',
    '|---|--:|--:|--:|---|---|--:|--:|--:|--:|---|--:|',
  ];
  for (const e of result.engines) {
    if (e.skipped) {
      lines.push(`| ${e.engine} | skipped: ${e.skipped} | | | | | | | | | | |`);
      continue;
    }
    lines.push(
      `| ${e.engine} | ${fmt(e.baselinePerSec)} | ${fmt(e.subjectPerSec)} | ${fmt(e.ratio, 3)} | ${e.ratio !== null && e.ratio >= DELIVERY_RATIO_GOAL ? 'met' : 'missed'} | ${e.pairRatios.map((r) => fmt(r, 3)).join(', ')} | ` +
        `${fmt(e.baselineCpuPercent, 1)} / ${fmt(e.subjectCpuPercent, 1)} | ${fmt(e.receiverCpuPercent.baseline, 1)} / ${fmt(e.receiverCpuPercent.subject, 1)} | ${fmt(e.publishPerSec)} | ${fmt(e.failedAttempts)} | ${e.signatureVerified ? 'yes' : 'no'} | ${fmt(e.subjectPeakRssMb, 1)} |`,
    );
  }
  lines.push(
    '',
    `End-to-end latency: an open-loop publisher at ${o.rate} msg/s (\`POST /v1/messages\`, same payload) for ${o.durationS} s after ${o.warmupS} s discarded, ${o.pairs} runs per setting; ` +
      `end-to-end = receiver arrival − the publisher receiving the 202 (negative when the delivery arrives first); publish = 202 received − when the request was due; due → received = receiver arrival − when the publish request was due. Medians over the runs of each run's percentiles.`,
    '',
    `| engine | pollMs | end-to-end min ms | p50 ms | p90 ms | p99 ms | max ms | goal p99 < ${DELIVERY_P99_GOAL_MS} ms | publish p50 ms | publish p99 ms | due → received p50 ms | p99 ms | missing |`,
    '|---|--:|--:|--:|--:|--:|--:|---|--:|--:|--:|--:|--:|',
  );
  for (const e of result.engines) {
    for (const l of e.latency) {
      lines.push(
        `| ${e.engine} | ${l.pollMs}${l.pollMs === DEFAULT_POLL_MS ? ' (default)' : ''} | ${fmt(l.e2eMs.min, 2)} | ${fmt(l.e2eMs.p50, 2)} | ${fmt(l.e2eMs.p90, 2)} | ${fmt(l.e2eMs.p99, 2)} | ${fmt(l.e2eMs.max, 2)} | ${l.e2eMs.p99 < DELIVERY_P99_GOAL_MS ? 'met' : 'missed'} | ${fmt(l.publishMs.p50, 2)} | ${fmt(l.publishMs.p99, 2)} | ${fmt(l.totalMs.p50, 2)} | ${fmt(l.totalMs.p99, 2)} | ${fmt(l.missing)} |`,
      );
    }
  }
  const sqlite = result.engines.find((e) => e.engine === 'sqlite' && e.storeFileSystem);
  if (sqlite) lines.push('', `SQLite store on a ${sqlite.storeFileSystem} file system.`);
  return `${lines.join('\n')}\n`;
}
