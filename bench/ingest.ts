// ingest: `POST /in/{source}` on the real server — a GitHub delivery verified
// (HMAC-SHA256 of the body), deduplicated on its delivery id and durably
// committed with its processing job before the 200 (SQLite WAL with
// synchronous=FULL; PostgreSQL with synchronous_commit=on) — against
// bench/ingest-baseline-server.js (same Fastify options, logger and log line,
// reads the same body and answers 200), side by side in one run on loopback.
// Every request is a new delivery: the load generator signs each one with a
// fresh delivery id, so none is answered as a duplicate.
import { execFileSync } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './keys-get.ts';
import type { Engine, Side } from './keys-get.ts';
import { runLoad } from './lib/load.ts';
import type { LoadResult } from './lib/load.ts';
import { DELIVERY_PLACEHOLDER } from './lib/loadTypes.ts';
import { dropSchema, postgresProblem } from './lib/postgres.ts';
import { CPUS, cpuSeconds, freePort, procStatusKb, startProcess, waitForHttp } from './lib/procs.ts';
import type { Managed } from './lib/procs.ts';
import { median, round } from './lib/stats.ts';
import { metricsOf, serverEnv, storeDir, sumOf } from './lib/subject.ts';

const CLI = join(ROOT, 'dist/src/cli/main.js');
const BASELINE = join(ROOT, 'bench/ingest-baseline-server.js');
const READY_TIMEOUT_MS = 60_000;
/** The goal: verified, deduplicated, durable ingest at half a bare handler's throughput or better. */
export const INGEST_RATIO_GOAL = 0.5;

export interface IngestOptions {
  engines: Engine[];
  /** Interleaved baseline/subject pairs per engine. */
  pairs: number;
  durationS: number;
  /** Discarded load right before each measured run. */
  warmupS: number;
  connections: number;
  postgresUrl: string;
  /** Size of each delivery's body (a GitHub push payload, padded). */
  bodyBytes: number;
}

export const INGEST_DEFAULTS: IngestOptions = {
  engines: ['sqlite', 'postgres'],
  pairs: 5,
  durationS: 10,
  warmupS: 2,
  connections: 50,
  postgresUrl: process.env.PORTCULLIS_BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
  bodyBytes: 4096,
};

/** The subject's group-commit figures over one measured run, from its /metrics. */
export interface CommitFigures {
  commits: number;
  deliveries: number;
  /** Deliveries per commit. */
  meanBatch: number;
}

export interface IngestRun {
  pair: number;
  side: Side;
  load: LoadResult;
  serverCpuPercent: number | null;
  /** Subject runs only. */
  commits: CommitFigures | null;
}

export interface IngestSideSummary {
  reqPerSec: number;
  p50Ms: number;
  p99Ms: number;
  serverCpuPercent: number | null;
  peakRssMb: number | null;
}

export interface IngestEngineResult {
  engine: Engine;
  skipped: string | null;
  /** File system holding the SQLite store (a tmpfs would make the fsyncs free: never used). */
  storeFileSystem: string | null;
  baseline: IngestSideSummary | null;
  subject: IngestSideSummary | null;
  /** Median subject req/s over median baseline req/s. */
  ratio: number | null;
  pairRatios: number[];
  /** Median over the subject's runs. */
  meanBatch: number | null;
  commitsPerSec: number | null;
  /** Events the subject stored, and deliveries it answered as duplicates (expected: none but the one sent on purpose). */
  stored: number | null;
  duplicates: number | null;
  /** Processing jobs still waiting when the last run ended: the worker in the same process did not keep up with this many. */
  backlog: number | null;
  runs: IngestRun[];
}

export interface IngestResult {
  bench: 'ingest';
  options: IngestOptions;
  pinning: typeof CPUS;
  engines: IngestEngineResult[];
}

type Log = (message: string) => void;

/** A GitHub push payload of about `bytes` bytes, with the delivery id's placeholder in it. */
export function pushPayload(bytes: number): string {
  const commit = (n: number) => ({
    id: `${n}`.repeat(40).slice(0, 40),
    tree_id: `${n + 1}`.repeat(40).slice(0, 40),
    distinct: true,
    message: `Fix ingest path ${n}`,
    timestamp: '2026-11-22T09:03:12Z',
    url: `https://github.com/acme/widgets/commit/${n}`,
    author: { name: 'Ada Lovelace', email: 'ada@example.com', username: 'ada' },
    committer: { name: 'GitHub', email: 'noreply@github.com', username: 'web-flow' },
    added: [],
    removed: [],
    modified: ['src/ingest.ts', 'docs/inbound.md'],
  });
  const payload = {
    ref: 'refs/heads/main',
    before: '6113728f27ae82c7b1a177c8d03f9e96e0adf246',
    after: '0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c',
    delivery: DELIVERY_PLACEHOLDER,
    repository: {
      id: 186853002,
      node_id: 'MDEwOlJlcG9zaXRvcnkxODY4NTMwMDI=',
      name: 'widgets',
      full_name: 'acme/widgets',
      private: false,
      owner: { name: 'acme', login: 'acme', id: 21031067, type: 'Organization' },
      html_url: 'https://github.com/acme/widgets',
      default_branch: 'main',
      description: '',
    },
    pusher: { name: 'ada', email: 'ada@example.com' },
    sender: { login: 'ada', id: 21031067, type: 'User', site_admin: false },
    created: false,
    deleted: false,
    forced: false,
    compare: 'https://github.com/acme/widgets/compare/6113728f27ae...0d1a26e67d8f',
    commits: [commit(1), commit(2), commit(3)],
    head_commit: commit(3),
  };
  const short = JSON.stringify(payload).length + 36 - DELIVERY_PLACEHOLDER.length;
  payload.repository.description = 'x'.repeat(Math.max(0, bytes - short));
  return JSON.stringify(payload);
}

/** A Prometheus sample, e.g. `portcullis_ingest_commits_total` or `portcullis_queue_jobs{state="ready"}`; 0 when absent. */
function sample(text: string, name: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? 0 : Number(line.slice(name.length + 1));
}

async function post(url: string, body: string, headers: Record<string, string>): Promise<{ status: number; text: string }> {
  const res = await fetch(url, { method: 'POST', headers, body });
  return { status: res.status, text: await res.text() };
}

function summarise(runs: IngestRun[], side: Side, peakRssKb: number | null): IngestSideSummary {
  const mine = runs.filter((r) => r.side === side);
  const cpu = mine.map((r) => r.serverCpuPercent).filter((c): c is number => c !== null);
  return {
    reqPerSec: round(median(mine.map((r) => r.load.reqPerSec))),
    p50Ms: round(median(mine.map((r) => r.load.latencyMs.p50)), 3),
    p99Ms: round(median(mine.map((r) => r.load.latencyMs.p99)), 3),
    serverCpuPercent: cpu.length > 0 ? round(median(cpu), 1) : null,
    peakRssMb: peakRssKb === null ? null : round(peakRssKb / 1024, 1),
  };
}

async function benchEngine(engine: Engine, options: IngestOptions, log: Log): Promise<IngestEngineResult> {
  const empty = { storeFileSystem: null, baseline: null, subject: null, ratio: null, pairRatios: [], meanBatch: null, commitsPerSec: null, stored: null, duplicates: null, backlog: null, runs: [] };
  if (engine === 'postgres') {
    const problem = await postgresProblem(options.postgresUrl);
    if (problem) {
      log(`postgres: skipped, cannot connect (${problem})`);
      return { engine, skipped: `PostgreSQL unreachable: ${problem}`, ...empty };
    }
  }
  const { dir, fileSystem } = storeDir('ingest', engine);
  const schema = engine === 'postgres' ? `bench_${randomBytes(6).toString('hex')}` : null;
  const storeEnv: Record<string, string> = schema ? { PORTCULLIS_DATABASE_URL: options.postgresUrl, PORTCULLIS_DATABASE_SCHEMA: schema } : {};
  const procs: Managed[] = [];
  try {
    const subjectPort = await freePort();
    const subjectBase = `http://127.0.0.1:${subjectPort}`;
    const subject = startProcess({
      name: `subject (${engine})`,
      cpu: CPUS.server,
      command: process.execPath,
      args: [CLI, 'serve'],
      env: serverEnv({ ...storeEnv, PORTCULLIS_PORT: String(subjectPort), PORTCULLIS_DATA_DIR: dir }),
      cwd: ROOT,
      stderrPath: join(dir, 'subject.stderr'),
    });
    procs.push(subject);
    await waitForHttp(`${subjectBase}/healthz`, subject, READY_TIMEOUT_MS);
    const admin = readFileSync(join(dir, 'admin.key'), 'utf8').trim();
    const created = await fetch(`${subjectBase}/v1/sources`, {
      method: 'POST',
      headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'bench', slug: 'bench-github', type: 'github' }),
    });
    if (created.status !== 201) throw new Error(`creating the bench source failed: ${created.status} ${await created.text()}`);
    const source = (await created.json()) as { secret: string; url: string };

    const baselinePort = await freePort();
    const baselineBase = `http://127.0.0.1:${baselinePort}`;
    const baseline = startProcess({
      name: 'baseline',
      cpu: CPUS.server,
      command: process.execPath,
      args: [BASELINE],
      env: serverEnv({ BENCH_PORT: String(baselinePort) }),
      cwd: ROOT,
      stderrPath: join(dir, 'baseline.stderr'),
    });
    procs.push(baseline);
    await waitForHttp(`${baselineBase}/healthz`, baseline, READY_TIMEOUT_MS);

    // Both sides take the same signed delivery; the subject stores it once and knows its copy.
    const template = pushPayload(options.bodyBytes);
    const body = template.replaceAll(DELIVERY_PLACEHOLDER, 'bench-check');
    const check = {
      'content-type': 'application/json',
      'x-github-event': 'push',
      'x-github-delivery': 'bench-check',
      'x-hub-signature-256': `sha256=${createHmac('sha256', source.secret).update(body).digest('hex')}`,
    };
    const first = await post(subjectBase + source.url, body, check);
    const again = await post(subjectBase + source.url, body, check);
    const base = await post(baselineBase + source.url, body, check);
    if (first.status !== 200 || !first.text.includes('"duplicate":false') || again.status !== 200 || !again.text.includes('"duplicate":true') || base.status !== 200) {
      throw new Error(`the sides do not answer as expected: subject ${first.status} ${first.text}, again ${again.status} ${again.text}, baseline ${base.status} ${base.text}`);
    }

    const headers = { 'content-type': 'application/json', 'x-github-event': 'push' };
    const servers = { baseline: { proc: baseline, url: baselineBase + source.url }, subject: { proc: subject, url: subjectBase + source.url } };
    const runs: IngestRun[] = [];
    for (let pair = 1; pair <= options.pairs; pair++) {
      for (const side of ['baseline', 'subject'] as const) {
        const { proc, url } = servers[side];
        let cpuStart: number | null = null;
        let wallStart = 0;
        // Read when the warm-up ends (the callback cannot wait for it), awaited after the run.
        const at: { start: Promise<string> | null } = { start: null };
        const load = await runLoad(
          { url, headers, connections: options.connections, durationS: options.durationS, warmupS: options.warmupS, body: template, githubSecret: source.secret },
          CPUS.load,
          () => {
            cpuStart = cpuSeconds(proc.pid);
            wallStart = performance.now();
            if (side === 'subject') at.start = metricsOf(subjectBase, admin);
          },
        );
        const cpuEnd = cpuSeconds(proc.pid);
        const wall = (performance.now() - wallStart) / 1000;
        const serverCpuPercent = cpuStart !== null && cpuEnd !== null ? round((100 * (cpuEnd - cpuStart)) / wall, 1) : null;
        let commits: CommitFigures | null = null;
        if (at.start !== null) {
          const [b, a] = [await at.start, await metricsOf(subjectBase, admin)];
          const n = sample(a, 'portcullis_ingest_commits_total') - sample(b, 'portcullis_ingest_commits_total');
          const d = sample(a, 'portcullis_ingest_batch_size_sum') - sample(b, 'portcullis_ingest_batch_size_sum');
          commits = { commits: n, deliveries: d, meanBatch: n > 0 ? round(d / n, 2) : 0 };
        }
        runs.push({ pair, side, load, serverCpuPercent, commits });
        log(
          `${engine} pair ${pair}/${options.pairs} ${side.padEnd(8)} ${round(load.reqPerSec)} req/s  p50 ${round(load.latencyMs.p50, 3)} ms  p99 ${round(load.latencyMs.p99, 3)} ms  server cpu ${serverCpuPercent ?? '?'}%` +
            (commits ? `  ${round(commits.commits / wall)} commits/s, ${commits.meanBatch} deliveries/commit` : ''),
        );
      }
    }
    const final = await metricsOf(subjectBase, admin);
    const rss = { baseline: procStatusKb(baseline.pid, 'VmHWM'), subject: procStatusKb(subject.pid, 'VmHWM') };
    await Promise.all([subject.stop(), baseline.stop()]);

    const subjectRuns = runs.filter((r) => r.commits !== null);
    const baselineSummary = summarise(runs, 'baseline', rss.baseline);
    const subjectSummary = summarise(runs, 'subject', rss.subject);
    const pairRatios = [];
    for (let pair = 1; pair <= options.pairs; pair++) {
      const b = runs.find((r) => r.pair === pair && r.side === 'baseline')!;
      const s = runs.find((r) => r.pair === pair && r.side === 'subject')!;
      pairRatios.push(round(s.load.reqPerSec / b.load.reqPerSec, 3));
    }
    return {
      engine,
      skipped: null,
      storeFileSystem: engine === 'sqlite' ? fileSystem : null,
      baseline: baselineSummary,
      subject: subjectSummary,
      ratio: round(subjectSummary.reqPerSec / baselineSummary.reqPerSec, 3),
      pairRatios,
      meanBatch: round(median(subjectRuns.map((r) => r.commits!.meanBatch)), 2),
      commitsPerSec: round(median(subjectRuns.map((r) => r.commits!.commits / r.load.durationS))),
      stored: sumOf(final, 'portcullis_webhooks_received_total'),
      // The check above sent one copy on purpose.
      duplicates: sumOf(final, 'portcullis_webhooks_duplicates_total') - 1,
      backlog: sample(final, 'portcullis_queue_jobs{state="ready"}'),
      runs,
    };
  } finally {
    await Promise.all(procs.map((p) => p.stop()));
    if (schema) await dropSchema(options.postgresUrl, schema).catch((err: Error) => log(`could not drop schema ${schema}: ${err.message}`));
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function runIngestBench(options: IngestOptions, log: Log): Promise<IngestResult> {
  log('building dist/ (npm run build)…');
  execFileSync(process.execPath, [join(ROOT, 'scripts/build.ts')], { cwd: ROOT, stdio: 'inherit' });
  const engines: IngestEngineResult[] = [];
  for (const engine of options.engines) engines.push(await benchEngine(engine, options, log));
  return { bench: 'ingest', options, pinning: CPUS, engines };
}

const fmt = (n: number | null | undefined, digits = 0): string => (n === null || n === undefined ? '–' : n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }));

/** The human summary written next to the JSON. */
export function ingestMarkdown(result: IngestResult): string {
  const o = result.options;
  const lines = [
    `\`POST /in/{source}\`: a GitHub push delivery of ${o.bodyBytes} bytes, signed per request with a fresh delivery id, verified, deduplicated and durably committed with its job before the 200, vs a bare Fastify POST handler with the same options, logger and body.`,
    `${o.pairs} interleaved pairs per engine, ${o.durationS} s × ${o.connections} connections each after a ${o.warmupS} s warm-up; ` +
      `server on CPU ${result.pinning.server ?? 'any'}, autocannon on CPU ${result.pinning.load ?? 'any'}. Medians over the runs.`,
    '',
    '| engine | side | req/s | p50 ms | p99 ms | server CPU % | peak RSS MB |',
    '|---|---|--:|--:|--:|--:|--:|',
  ];
  for (const e of result.engines) {
    if (e.skipped) {
      lines.push(`| ${e.engine} | skipped: ${e.skipped} | | | | | |`);
      continue;
    }
    for (const side of ['baseline', 'subject'] as const) {
      const s = e[side]!;
      lines.push(`| ${e.engine} | ${side} | ${fmt(s.reqPerSec)} | ${fmt(s.p50Ms, 3)} | ${fmt(s.p99Ms, 3)} | ${fmt(s.serverCpuPercent, 1)} | ${fmt(s.peakRssMb, 1)} |`);
    }
  }
  lines.push(
    '',
    `| engine | ratio subject/baseline (medians) | goal ≥ ${INGEST_RATIO_GOAL} | per-pair ratios | p99 ingest ms | deliveries/commit | commits/s | stored | duplicates | jobs waiting at the end |`,
    '|---|--:|---|---|--:|--:|--:|--:|--:|--:|',
  );
  for (const e of result.engines) {
    if (e.skipped || e.ratio === null) continue;
    lines.push(
      `| ${e.engine} | ${fmt(e.ratio, 3)} | ${e.ratio >= INGEST_RATIO_GOAL ? 'met' : 'missed'} | ${e.pairRatios.map((r) => fmt(r, 3)).join(', ')} | ${fmt(e.subject?.p99Ms, 3)} | ${fmt(e.meanBatch, 2)} | ${fmt(e.commitsPerSec)} | ${fmt(e.stored)} | ${fmt(e.duplicates)} | ${fmt(e.backlog)} |`,
    );
  }
  const sqlite = result.engines.find((e) => e.engine === 'sqlite' && e.storeFileSystem);
  if (sqlite) lines.push('', `SQLite store on a ${sqlite.storeFileSystem} file system.`);
  return `${lines.join('\n')}\n`;
}
