// keys-get: authenticated `GET /v1/keys/{id}` on the real server (API key
// verification, scope check, store read, response schema, metrics, one log
// line) against bench/baseline-server.js (same Fastify options, same logger and
// log line, same JSON body, nothing else), side by side in one run on loopback.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { dropSchema, postgresProblem } from './lib/postgres.ts';
import { callgrindAvailable, countInstructions } from './lib/callgrind.ts';
import type { InstructionCount } from './lib/callgrind.ts';
import { runLoad } from './lib/load.ts';
import type { LoadResult } from './lib/load.ts';
import { CPUS, cpuSeconds, freePort, procStatusKb, startProcess, waitForHttp } from './lib/procs.ts';
import type { Managed } from './lib/procs.ts';
import { median, round } from './lib/stats.ts';
import { serverEnv } from './lib/subject.ts';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));
// Both sides run compiled code: the subject is the published bin (dist/, built by runKeysGet).
const CLI = join(ROOT, 'dist/src/cli/main.js');
const BASELINE = join(ROOT, 'bench/baseline-server.js');

export type Engine = 'sqlite' | 'postgres';
export type Side = 'baseline' | 'subject';

/**
 * `keys-get`: key verification and scope check (the foundation's figure).
 * `edge`: the same, plus a per-key rate-limit policy (never reached) and usage metering,
 * i.e. "key auth + rate limit + metering on" (the edge capability's figure).
 */
export type Variant = 'keys-get' | 'edge';

/** The subject's extra settings per variant; metering is always on. */
const VARIANT_ENV: Record<Variant, Record<string, string>> = {
  'keys-get': {},
  edge: { PORTCULLIS_RATE_LIMITS: JSON.stringify({ policies: { bench: { limit: 1_000_000_000, window: 60 } }, perKey: 'bench' }) },
};
export const RATIO_GOALS: Record<Variant, number> = { 'keys-get': 0.85, edge: 0.8 };

export interface KeysGetOptions {
  variant: Variant;
  engines: Engine[];
  /** Interleaved baseline/subject pairs per engine. */
  pairs: number;
  durationS: number;
  /** Discarded load right before each measured run. */
  warmupS: number;
  connections: number;
  /** Count instructions per request with callgrind (slow: a few minutes). */
  callgrind: boolean;
  callgrindRequests: number;
  callgrindWarmup: number;
  postgresUrl: string;
  /** Write a V8 CPU profile of each server here (perturbs the figures: for finding hot spots only). */
  cpuProfDir: string | null;
}

export const KEYS_GET_DEFAULTS: KeysGetOptions = {
  variant: 'keys-get',
  engines: ['sqlite', 'postgres'],
  pairs: 5,
  durationS: 10,
  warmupS: 2,
  connections: 10,
  callgrind: true,
  callgrindRequests: 2000,
  callgrindWarmup: 2000,
  postgresUrl: process.env.PORTCULLIS_BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
  cpuProfDir: null,
};

/** Peak resident set of the server under this load, goal from the issue. */
export const PEAK_RSS_GOAL_MB = 150;
const READY_TIMEOUT_MS = 60_000;

export interface Run {
  pair: number;
  side: Side;
  load: LoadResult;
  /** Server CPU time over wall time of the counted run: ~100 means the server core was saturated. */
  serverCpuPercent: number | null;
}

export interface SideSummary {
  reqPerSec: number;
  p50Ms: number;
  p99Ms: number;
  serverCpuPercent: number | null;
  /** VmHWM of the server process at the end of all its runs. */
  peakRssMb: number | null;
  instructions: InstructionCount | null;
}

export interface EngineResult {
  engine: Engine;
  /** Set when the engine could not be benchmarked (e.g. PostgreSQL unreachable). */
  skipped: string | null;
  baseline: SideSummary | null;
  subject: SideSummary | null;
  /** Median subject req/s over median baseline req/s. */
  ratio: number | null;
  /** subject/baseline of each pair, in run order: shows the spread and any drift. */
  pairRatios: number[];
  callgrindError: string | null;
  runs: Run[];
}

export interface KeysGetResult {
  bench: Variant;
  options: KeysGetOptions;
  pinning: typeof CPUS;
  engines: EngineResult[];
}

type Log = (message: string) => void;

async function request(url: string, key: string, init: { method?: string; body?: unknown } = {}): Promise<{ status: number; text: string }> {
  const res = await fetch(url, {
    method: init.method ?? 'GET',
    headers: { authorization: `Bearer ${key}`, ...(init.body ? { 'content-type': 'application/json' } : {}) },
    ...(init.body ? { body: JSON.stringify(init.body) } : {}),
  });
  return { status: res.status, text: await res.text() };
}

/** Creates the keys:read key the load uses and returns it with the body of GET /v1/keys/{its id}. */
async function prepareKey(base: string, dataDir: string): Promise<{ secret: string; path: string; body: string }> {
  const admin = readFileSync(join(dataDir, 'admin.key'), 'utf8').trim();
  const created = await request(`${base}/v1/keys`, admin, { method: 'POST', body: { name: 'bench-reader', scopes: ['keys:read'] } });
  if (created.status !== 201) throw new Error(`creating the bench key failed: ${created.status} ${created.text}`);
  const { id, secret } = JSON.parse(created.text) as { id: string; secret: string };
  const path = `/v1/keys/${id}`;
  const got = await request(base + path, secret);
  if (got.status !== 200) throw new Error(`GET ${path} failed: ${got.status} ${got.text}`);
  return { secret, path, body: got.text };
}

function summarise(runs: Run[], side: Side, peakRssKb: number | null, instructions: InstructionCount | null): SideSummary {
  const mine = runs.filter((r) => r.side === side);
  const cpu = mine.map((r) => r.serverCpuPercent).filter((c): c is number => c !== null);
  return {
    reqPerSec: round(median(mine.map((r) => r.load.reqPerSec))),
    p50Ms: round(median(mine.map((r) => r.load.latencyMs.p50)), 3),
    p99Ms: round(median(mine.map((r) => r.load.latencyMs.p99)), 3),
    serverCpuPercent: cpu.length > 0 ? round(median(cpu), 1) : null,
    peakRssMb: peakRssKb === null ? null : round(peakRssKb / 1024, 1),
    instructions,
  };
}

async function benchEngine(engine: Engine, options: KeysGetOptions, log: Log): Promise<EngineResult> {
  if (engine === 'postgres') {
    const problem = await postgresProblem(options.postgresUrl);
    if (problem) {
      log(`postgres: skipped, cannot connect (${problem})`);
      return { engine, skipped: `PostgreSQL unreachable: ${problem}`, baseline: null, subject: null, ratio: null, pairRatios: [], callgrindError: null, runs: [] };
    }
  }
  const dir = mkdtempSync(join(tmpdir(), `portcullis-bench-${engine}-`));
  const schema = engine === 'postgres' ? `bench_${randomBytes(6).toString('hex')}` : null;
  const storeEnv: Record<string, string> = schema ? { PORTCULLIS_DATABASE_URL: options.postgresUrl, PORTCULLIS_DATABASE_SCHEMA: schema } : {};
  const procs: Managed[] = [];
  const profile = (side: Side): string[] =>
    options.cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${options.cpuProfDir}`, `--cpu-prof-name=${options.variant}-${engine}-${side}.cpuprofile`] : [];
  try {
    const subjectPort = await freePort();
    const subjectBase = `http://127.0.0.1:${subjectPort}`;
    const subjectEnv = (port: number): NodeJS.ProcessEnv => serverEnv({ ...storeEnv, ...VARIANT_ENV[options.variant], PORTCULLIS_PORT: String(port), PORTCULLIS_DATA_DIR: dir });
    const subject = startProcess({
      name: `subject (${engine})`,
      cpu: CPUS.server,
      command: process.execPath,
      args: [...profile('subject'), CLI, 'serve'],
      env: subjectEnv(subjectPort),
      cwd: ROOT,
      stderrPath: join(dir, 'subject.stderr'),
    });
    procs.push(subject);
    await waitForHttp(`${subjectBase}/healthz`, subject, READY_TIMEOUT_MS);
    const key = await prepareKey(subjectBase, dir);
    const bodyFile = join(dir, 'body.json');
    writeFileSync(bodyFile, key.body);

    const baselinePort = await freePort();
    const baselineBase = `http://127.0.0.1:${baselinePort}`;
    const baselineEnv = (port: number): NodeJS.ProcessEnv => serverEnv({ BENCH_PORT: String(port), BENCH_BODY_FILE: bodyFile });
    const baseline = startProcess({
      name: 'baseline',
      cpu: CPUS.server,
      command: process.execPath,
      args: [...profile('baseline'), BASELINE],
      env: baselineEnv(baselinePort),
      cwd: ROOT,
      stderrPath: join(dir, 'baseline.stderr'),
    });
    procs.push(baseline);
    await waitForHttp(`${baselineBase}/healthz`, baseline, READY_TIMEOUT_MS);
    const same = await request(baselineBase + key.path, key.secret);
    if (same.text !== key.body) throw new Error(`the baseline answers a different body:\n${same.text}\nvs\n${key.body}`);

    const headers = { authorization: `Bearer ${key.secret}` };
    const servers = { baseline: { proc: baseline, url: baselineBase + key.path }, subject: { proc: subject, url: subjectBase + key.path } };
    const runs: Run[] = [];
    for (let pair = 1; pair <= options.pairs; pair++) {
      for (const side of ['baseline', 'subject'] as const) {
        const { proc, url } = servers[side];
        let cpuStart: number | null = null;
        let wallStart = 0;
        const load = await runLoad({ url, headers, connections: options.connections, durationS: options.durationS, warmupS: options.warmupS }, CPUS.load, () => {
          cpuStart = cpuSeconds(proc.pid);
          wallStart = performance.now();
        });
        const cpuEnd = cpuSeconds(proc.pid);
        const wall = (performance.now() - wallStart) / 1000;
        const serverCpuPercent = cpuStart !== null && cpuEnd !== null ? round((100 * (cpuEnd - cpuStart)) / wall, 1) : null;
        runs.push({ pair, side, load, serverCpuPercent });
        log(
          `${engine} pair ${pair}/${options.pairs} ${side.padEnd(8)} ${round(load.reqPerSec)} req/s  p50 ${round(load.latencyMs.p50, 3)} ms  p99 ${round(load.latencyMs.p99, 3)} ms  server cpu ${serverCpuPercent ?? '?'}%`,
        );
      }
    }
    const rss = { baseline: procStatusKb(baseline.pid, 'VmHWM'), subject: procStatusKb(subject.pid, 'VmHWM') };
    await Promise.all([subject.stop(), baseline.stop()]);

    const instructions: Record<Side, InstructionCount | null> = { baseline: null, subject: null };
    let callgrindError: string | null = null;
    if (options.callgrind) {
      try {
        for (const side of ['baseline', 'subject'] as const) {
          const port = await freePort();
          const base = `http://127.0.0.1:${port}`;
          log(`${engine} callgrind ${side}: ${options.callgrindWarmup} warm-up + ${options.callgrindRequests} counted requests, one at a time…`);
          const count = await countInstructions(
            {
              name: side,
              nodeArgs: side === 'subject' ? [CLI, 'serve'] : [BASELINE],
              env: side === 'subject' ? subjectEnv(port) : baselineEnv(port),
              cwd: ROOT,
              dir,
              readyUrl: `${base}/healthz`,
              url: base + key.path,
              headers,
            },
            { warmup: options.callgrindWarmup, requests: options.callgrindRequests, serverCpu: CPUS.server, loadCpu: CPUS.load },
          );
          instructions[side] = count;
          log(`${engine} callgrind ${side}: ${Math.round(count.perRequest)} instructions/request (${round(count.wallS, 1)} s under valgrind)`);
        }
      } catch (err) {
        callgrindError = (err as Error).message;
        log(`${engine} callgrind failed: ${callgrindError}`);
      }
    }

    const baselineSummary = summarise(runs, 'baseline', rss.baseline, instructions.baseline);
    const subjectSummary = summarise(runs, 'subject', rss.subject, instructions.subject);
    const pairRatios = [];
    for (let pair = 1; pair <= options.pairs; pair++) {
      const b = runs.find((r) => r.pair === pair && r.side === 'baseline')!;
      const s = runs.find((r) => r.pair === pair && r.side === 'subject')!;
      pairRatios.push(round(s.load.reqPerSec / b.load.reqPerSec, 3));
    }
    return {
      engine,
      skipped: null,
      baseline: baselineSummary,
      subject: subjectSummary,
      ratio: round(subjectSummary.reqPerSec / baselineSummary.reqPerSec, 3),
      pairRatios,
      callgrindError,
      runs,
    };
  } finally {
    await Promise.all(procs.map((p) => p.stop()));
    if (schema) await dropSchema(options.postgresUrl, schema).catch((err: Error) => log(`could not drop schema ${schema}: ${err.message}`));
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function runKeysGet(options: KeysGetOptions, log: Log): Promise<KeysGetResult> {
  if (options.callgrind && !callgrindAvailable()) {
    log('valgrind/callgrind_control not found: instructions per request are skipped');
    options = { ...options, callgrind: false };
  }
  log('building dist/ (npm run build)…');
  execFileSync(process.execPath, [join(ROOT, 'scripts/build.ts')], { cwd: ROOT, stdio: 'inherit' });
  const engines: EngineResult[] = [];
  for (const engine of options.engines) engines.push(await benchEngine(engine, options, log));
  return { bench: options.variant, options, pinning: CPUS, engines };
}

const fmt = (n: number | null | undefined, digits = 0): string => (n === null || n === undefined ? '–' : n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }));

/** The human summary written next to the JSON. */
export function keysGetMarkdown(result: KeysGetResult): string {
  const o = result.options;
  const lines = [
    `Authenticated \`GET /v1/keys/{id}\` (key \`keys:read\`${o.variant === 'edge' ? ', a per-key rate-limit policy, usage metering' : ''}) vs a bare Fastify handler with the same options, logger and body.`,
    `${o.pairs} interleaved pairs per engine, ${o.durationS} s × ${o.connections} connections each after a ${o.warmupS} s warm-up; ` +
      `server on CPU ${result.pinning.server ?? 'any'}, autocannon on CPU ${result.pinning.load ?? 'any'}. Medians over the runs.`,
    '',
    '| engine | side | req/s | p50 ms | p99 ms | server CPU % | peak RSS MB | instructions/request |',
    '|---|---|--:|--:|--:|--:|--:|--:|',
  ];
  for (const e of result.engines) {
    if (e.skipped) {
      lines.push(`| ${e.engine} | skipped: ${e.skipped} | | | | | | |`);
      continue;
    }
    for (const side of ['baseline', 'subject'] as const) {
      const s = e[side]!;
      lines.push(
        `| ${e.engine} | ${side} | ${fmt(s.reqPerSec)} | ${fmt(s.p50Ms, 3)} | ${fmt(s.p99Ms, 3)} | ${fmt(s.serverCpuPercent, 1)} | ${fmt(s.peakRssMb, 1)} | ${fmt(s.instructions?.perRequest)} |`,
      );
    }
  }
  const goal = RATIO_GOALS[o.variant];
  lines.push('', '| engine | ratio subject/baseline (medians) | goal ≥ ' + goal + ' | per-pair ratios | subject peak RSS goal < ' + PEAK_RSS_GOAL_MB + ' MB |', '|---|--:|---|---|---|');
  for (const e of result.engines) {
    if (e.skipped || e.ratio === null) continue;
    const rss = e.subject?.peakRssMb ?? null;
    lines.push(
      `| ${e.engine} | ${fmt(e.ratio, 3)} | ${e.ratio >= goal ? 'met' : 'missed'} | ${e.pairRatios.map((r) => fmt(r, 3)).join(', ')} | ${rss === null ? '–' : rss < PEAK_RSS_GOAL_MB ? 'met' : 'missed'} |`,
    );
  }
  for (const e of result.engines) if (e.callgrindError) lines.push('', `callgrind on ${e.engine} failed: ${e.callgrindError}`);
  return `${lines.join('\n')}\n`;
}
