// `npm run bench [-- <name>…] [flags]`: runs the named benchmarks (all by default)
// and writes bench/results/<name>-<time>.{json,md} plus <name>-latest.{json,md}.
// Figures are reported, never gates: the exit code is non-zero only when a bench
// could not run.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { KEYS_GET_DEFAULTS, ROOT, keysGetMarkdown, runKeysGet } from './keys-get.ts';
import type { Engine, Variant } from './keys-get.ts';
import { ACCURACY_DEFAULTS, accuracyMarkdown, runLimiterAccuracy } from './limiter-accuracy.ts';
import { PROXY_DEFAULTS, proxyMarkdown, runProxyBench } from './proxy.ts';
import { INGEST_DEFAULTS, ingestMarkdown, runIngestBench } from './ingest.ts';
import { DELIVERY_DEFAULTS, deliveryMarkdown, runDeliveryBench } from './delivery.ts';
import { describeMachine } from './lib/machine.ts';
import type { Machine } from './lib/machine.ts';
import { CPUS, killAll, pinSelf } from './lib/procs.ts';

const RESULTS_DIR = join(ROOT, 'bench/results');
const PROFILES_DIR = join(RESULTS_DIR, 'profiles');

const USAGE = `usage: npm run bench -- [keys-get] [edge] [proxy] [ingest] [delivery] [limiter-accuracy] [flags]
  --pairs N               interleaved baseline/subject pairs per engine (default ${KEYS_GET_DEFAULTS.pairs})
  --duration S            seconds per measured run (default ${KEYS_GET_DEFAULTS.durationS}; delivery: per latency run)
  --warmup S              seconds of discarded load before each run (default ${KEYS_GET_DEFAULTS.warmupS})
  --messages N            delivery: deliveries per throughput run (default ${DELIVERY_DEFAULTS.messages}; a discarded round of N/10 first)
  --rate N                delivery: messages per second in the latency runs (default ${DELIVERY_DEFAULTS.rate})
  --low-poll-ms N         delivery: a second latency series, the subject restarted with delivery.pollMs N (default: none)
  --connections N         concurrent connections (default ${KEYS_GET_DEFAULTS.connections}; ingest ${INGEST_DEFAULTS.connections}; delivery: the concurrency of both senders, ${DELIVERY_DEFAULTS.concurrency})
  --engines a,b           sqlite,postgres (default both)
  --postgres-url URL      default ${KEYS_GET_DEFAULTS.postgresUrl} (env PORTCULLIS_BENCH_DATABASE_URL)
  --no-callgrind          skip instructions per request (saves a few minutes)
  --callgrind-requests N  requests counted under callgrind (default ${KEYS_GET_DEFAULTS.callgrindRequests})
  --callgrind-warmup N    requests sent first under callgrind, not counted (default ${KEYS_GET_DEFAULTS.callgrindWarmup})
  --cpu-prof              write V8 CPU profiles of the servers to bench/results/profiles/ (skews the figures, so nothing is written to bench/results/ but the profiles)
  --no-write              print the summary only, write nothing to bench/results/`;

interface BenchReport {
  json: object;
  markdown: string;
}

type Flags = ReturnType<typeof parse>['values'];

function parse() {
  return parseArgs({
    allowPositionals: true,
    allowNegative: true,
    options: {
      pairs: { type: 'string' },
      duration: { type: 'string' },
      warmup: { type: 'string' },
      connections: { type: 'string' },
      messages: { type: 'string' },
      rate: { type: 'string' },
      'low-poll-ms': { type: 'string' },
      engines: { type: 'string' },
      'postgres-url': { type: 'string' },
      callgrind: { type: 'boolean', default: true },
      'callgrind-requests': { type: 'string' },
      'callgrind-warmup': { type: 'string' },
      'cpu-prof': { type: 'boolean', default: false },
      write: { type: 'boolean', default: true },
      help: { type: 'boolean', short: 'h' },
    },
  });
}

function positiveNumber(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name} must be a positive number`);
  return n;
}

async function keysGet(variant: Variant, flags: Flags, log: (m: string) => void): Promise<BenchReport> {
  const engines = (flags.engines?.split(',').map((e) => e.trim()) ?? KEYS_GET_DEFAULTS.engines) as Engine[];
  for (const e of engines) if (e !== 'sqlite' && e !== 'postgres') throw new Error(`unknown engine ${e}`);
  const result = await runKeysGet(
    {
      ...KEYS_GET_DEFAULTS,
      variant,
      engines,
      pairs: Math.round(positiveNumber('pairs', flags.pairs, KEYS_GET_DEFAULTS.pairs)),
      durationS: positiveNumber('duration', flags.duration, KEYS_GET_DEFAULTS.durationS),
      warmupS: positiveNumber('warmup', flags.warmup, KEYS_GET_DEFAULTS.warmupS),
      connections: Math.round(positiveNumber('connections', flags.connections, KEYS_GET_DEFAULTS.connections)),
      callgrind: flags.callgrind ?? true,
      callgrindRequests: Math.round(positiveNumber('callgrind-requests', flags['callgrind-requests'], KEYS_GET_DEFAULTS.callgrindRequests)),
      callgrindWarmup: Math.round(positiveNumber('callgrind-warmup', flags['callgrind-warmup'], KEYS_GET_DEFAULTS.callgrindWarmup)),
      postgresUrl: flags['postgres-url'] ?? KEYS_GET_DEFAULTS.postgresUrl,
      cpuProfDir: flags['cpu-prof'] ? PROFILES_DIR : null,
    },
    log,
  );
  return { json: result, markdown: keysGetMarkdown(result) };
}

const BENCHES: Record<string, (flags: Flags, log: (m: string) => void) => Promise<BenchReport>> = {
  'keys-get': (flags, log) => keysGet('keys-get', flags, log),
  edge: (flags, log) => keysGet('edge', flags, log),
  proxy: async (flags, log) => {
    const result = await runProxyBench(
      {
        pairs: Math.round(positiveNumber('pairs', flags.pairs, PROXY_DEFAULTS.pairs)),
        durationS: positiveNumber('duration', flags.duration, PROXY_DEFAULTS.durationS),
        warmupS: positiveNumber('warmup', flags.warmup, PROXY_DEFAULTS.warmupS),
        connections: Math.round(positiveNumber('connections', flags.connections, PROXY_DEFAULTS.connections)),
      },
      log,
    );
    return { json: result, markdown: proxyMarkdown(result) };
  },
  ingest: async (flags, log) => {
    const engines = (flags.engines?.split(',').map((e) => e.trim()) ?? INGEST_DEFAULTS.engines) as Engine[];
    for (const e of engines) if (e !== 'sqlite' && e !== 'postgres') throw new Error(`unknown engine ${e}`);
    // No callgrind here: one request at a time would commit one delivery at a time, not the batched path measured.
    const result = await runIngestBench(
      {
        ...INGEST_DEFAULTS,
        engines,
        pairs: Math.round(positiveNumber('pairs', flags.pairs, INGEST_DEFAULTS.pairs)),
        durationS: positiveNumber('duration', flags.duration, INGEST_DEFAULTS.durationS),
        warmupS: positiveNumber('warmup', flags.warmup, INGEST_DEFAULTS.warmupS),
        connections: Math.round(positiveNumber('connections', flags.connections, INGEST_DEFAULTS.connections)),
        postgresUrl: flags['postgres-url'] ?? INGEST_DEFAULTS.postgresUrl,
      },
      log,
    );
    return { json: result, markdown: ingestMarkdown(result) };
  },
  delivery: async (flags, log) => {
    const engines = (flags.engines?.split(',').map((e) => e.trim()) ?? DELIVERY_DEFAULTS.engines) as Engine[];
    for (const e of engines) if (e !== 'sqlite' && e !== 'postgres') throw new Error(`unknown engine ${e}`);
    const messages = Math.round(positiveNumber('messages', flags.messages, DELIVERY_DEFAULTS.messages));
    const result = await runDeliveryBench(
      {
        ...DELIVERY_DEFAULTS,
        engines,
        pairs: Math.round(positiveNumber('pairs', flags.pairs, DELIVERY_DEFAULTS.pairs)),
        messages,
        warmupMessages: flags.messages === undefined ? DELIVERY_DEFAULTS.warmupMessages : Math.max(1, Math.round(messages / 10)),
        concurrency: Math.round(positiveNumber('connections', flags.connections, DELIVERY_DEFAULTS.concurrency)),
        rate: positiveNumber('rate', flags.rate, DELIVERY_DEFAULTS.rate),
        durationS: positiveNumber('duration', flags.duration, DELIVERY_DEFAULTS.durationS),
        warmupS: positiveNumber('warmup', flags.warmup, DELIVERY_DEFAULTS.warmupS),
        lowPollMs: flags['low-poll-ms'] === undefined ? DELIVERY_DEFAULTS.lowPollMs : Math.round(positiveNumber('low-poll-ms', flags['low-poll-ms'], 10)),
        postgresUrl: flags['postgres-url'] ?? DELIVERY_DEFAULTS.postgresUrl,
        cpuProfDir: flags['cpu-prof'] ? PROFILES_DIR : null,
      },
      log,
    );
    return { json: result, markdown: deliveryMarkdown(result) };
  },
  'limiter-accuracy': async (_flags, log) => {
    const result = await runLimiterAccuracy(ACCURACY_DEFAULTS, log);
    return { json: result, markdown: accuracyMarkdown(result) };
  },
};

function machineMarkdown(m: Machine, startedAt: Date, finishedAt: Date, loadAfter: number[]): string {
  return [
    `Run ${startedAt.toISOString()} (${Math.round((finishedAt.getTime() - startedAt.getTime()) / 1000)} s), commit ${m.commit ?? 'unknown'}.`,
    `Machine: ${m.cpus} × ${m.cpuModel}, ${m.memoryMb} MB, Linux ${m.kernel}, Node ${m.node}; ` +
      `load average ${m.loadAverage.join(' ')} before, ${loadAfter.join(' ')} after; perf instruction counters ${m.perfInstructions ? 'available' : 'not available'}.`,
  ].join('\n');
}

let interrupted = false;

async function main(): Promise<number> {
  const { values: flags, positionals } = parse();
  if (flags.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const names = positionals.length > 0 ? positionals : Object.keys(BENCHES);
  for (const name of names) if (!BENCHES[name]) throw new Error(`unknown bench ${name}; known: ${Object.keys(BENCHES).join(', ')}`);

  process.on('SIGINT', () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    process.stderr.write('\ninterrupted: stopping servers and cleaning up (Ctrl-C again to quit at once)\n');
    killAll();
  });
  // The orchestrator shares the load generator's core, never the server's.
  pinSelf(CPUS.load);
  const log = (m: string): void => {
    process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${m}\n`);
  };

  for (const name of names) {
    const startedAt = new Date();
    const machine = describeMachine(ROOT);
    log(`${name}: starting on ${machine.cpus} × ${machine.cpuModel}, Node ${machine.node}`);
    const report = await BENCHES[name]!(flags, log);
    const finishedAt = new Date();
    const loadAfter = describeMachine(ROOT).loadAverage;
    const markdown = `# ${name}\n\n${machineMarkdown(machine, startedAt, finishedAt, loadAfter)}\n\n${report.markdown}`;
    const json = { ...report.json, startedAt: startedAt.toISOString(), finishedAt: finishedAt.toISOString(), machine, loadAverageAfter: loadAfter };
    process.stdout.write(`\n${markdown}\n`);
    if (flags.write && !flags['cpu-prof']) {
      mkdirSync(RESULTS_DIR, { recursive: true });
      const stamp = startedAt.toISOString().replace(/:/g, '-').replace(/\.\d+Z$/, 'Z');
      for (const suffix of [stamp, 'latest']) {
        writeFileSync(join(RESULTS_DIR, `${name}-${suffix}.json`), `${JSON.stringify(json, null, 2)}\n`);
        writeFileSync(join(RESULTS_DIR, `${name}-${suffix}.md`), markdown);
      }
      log(`${name}: results in bench/results/${name}-${stamp}.{json,md}`);
    }
  }
  return interrupted ? 130 : 0;
}

try {
  process.exitCode = await main();
} catch (err) {
  process.stderr.write(interrupted ? 'bench interrupted; servers stopped, temp files removed\n' : `bench failed: ${(err as Error).message}\n`);
  process.exitCode = interrupted ? 130 : 1;
}
