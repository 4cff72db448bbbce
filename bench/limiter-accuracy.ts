// limiter-accuracy: N concurrent requests against a per-key limit L must let exactly L
// through (0 overshoot) — in one process with the in-memory limiter, and across two
// server processes sharing Redis. A count, not a timing: it is the same on any machine.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent } from 'undici';
import { ROOT } from './keys-get.ts';
import { CPUS, freePort, startProcess, waitForHttp } from './lib/procs.ts';
import type { Managed } from './lib/procs.ts';

const CLI = join(ROOT, 'dist/src/cli/main.js');
const SHARED_SECRET = randomBytes(32).toString('base64url');

export interface AccuracyOptions {
  limit: number;
  requests: number;
  /** Rounds per setup, each with a fresh key. */
  rounds: number;
  redisUrl: string;
}

export const ACCURACY_DEFAULTS: AccuracyOptions = { limit: 100, requests: 1000, rounds: 5, redisUrl: process.env.PORTCULLIS_BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379' };

interface Setup {
  name: string;
  processes: number;
  redis: boolean;
}

export interface AccuracyResult {
  bench: 'limiter-accuracy';
  options: AccuracyOptions;
  setups: { name: string; allowed: number[]; overshoot: number[]; unavailable: number[]; skipped: string | null }[];
}

type Log = (message: string) => void;

async function startServers(setup: Setup, options: AccuracyOptions, dir: string, policy: string): Promise<{ urls: string[]; procs: Managed[] }> {
  // Fail closed: a step Redis does not answer within the timeout is a 503 here, never an uncounted 200.
  const limits = JSON.stringify({ policies: { [policy]: { limit: options.limit, window: 3600, onStoreError: 'closed' } }, perKey: policy });
  const procs: Managed[] = [];
  const urls: string[] = [];
  for (let i = 0; i < setup.processes; i++) {
    const port = await freePort();
    const proc = startProcess({
      name: `${setup.name} ${i}`,
      cpu: CPUS.server,
      command: process.execPath,
      args: [CLI, 'serve'],
      env: {
        PATH: process.env.PATH,
        PORTCULLIS_HOST: '127.0.0.1',
        PORTCULLIS_PORT: String(port),
        PORTCULLIS_DATA_DIR: dir,
        PORTCULLIS_SECRET_KEY: SHARED_SECRET,
        PORTCULLIS_LOG_LEVEL: 'warn',
        PORTCULLIS_RATE_LIMITS: limits,
        ...(setup.redis ? { PORTCULLIS_REDIS_URL: options.redisUrl } : {}),
      },
      cwd: ROOT,
      stderrPath: join(dir, `server-${i}.stderr`),
    });
    procs.push(proc);
    urls.push(`http://127.0.0.1:${port}`);
    // The first process initialises the store (one SQLite file the others share).
    await waitForHttp(`${urls[i]}/readyz`, proc, 30_000);
  }
  return { urls, procs };
}

async function oneRound(urls: string[], admin: string, requests: number, agent: Agent): Promise<{ allowed: number; unavailable: number }> {
  const created = await fetch(`${urls[0]}/v1/keys`, {
    method: 'POST',
    headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'accuracy', scopes: ['keys:read'] }),
  });
  if (created.status !== 201) throw new Error(`creating the key failed: ${created.status}`);
  const { secret } = (await created.json()) as { secret: string };
  const statuses = await Promise.all(
    Array.from({ length: requests }, async (_, i) => {
      const res = await fetch(`${urls[i % urls.length]}/v1/keys?limit=1`, { headers: { authorization: `Bearer ${secret}` }, dispatcher: agent } as RequestInit);
      await res.arrayBuffer();
      return res.status;
    }),
  );
  const unexpected = statuses.filter((s) => s !== 200 && s !== 429 && s !== 503);
  if (unexpected.length > 0) throw new Error(`unexpected statuses: ${[...new Set(unexpected)].join(', ')}`);
  return { allowed: statuses.filter((s) => s === 200).length, unavailable: statuses.filter((s) => s === 503).length };
}

async function redisProblem(url: string): Promise<string | null> {
  const { Redis } = await import('ioredis');
  const redis = new Redis(url, { lazyConnect: true, connectTimeout: 2000, maxRetriesPerRequest: 0 });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    await redis.ping();
    return null;
  } catch (err) {
    return (err as Error).message;
  } finally {
    redis.disconnect();
  }
}

export async function runLimiterAccuracy(options: AccuracyOptions, log: Log): Promise<AccuracyResult> {
  log('building dist/ (npm run build)…');
  execFileSync(process.execPath, [join(ROOT, 'scripts/build.ts')], { cwd: ROOT, stdio: 'inherit' });
  const setups: Setup[] = [
    { name: 'memory, 1 process', processes: 1, redis: false },
    { name: 'Redis, 2 processes', processes: 2, redis: true },
  ];
  const result: AccuracyResult = { bench: 'limiter-accuracy', options, setups: [] };
  for (const setup of setups) {
    const problem = setup.redis ? await redisProblem(options.redisUrl) : null;
    if (problem) {
      log(`${setup.name}: skipped (${problem})`);
      result.setups.push({ name: setup.name, allowed: [], overshoot: [], unavailable: [], skipped: `Redis unreachable: ${problem}` });
      continue;
    }
    const dir = mkdtempSync(join(tmpdir(), 'portcullis-accuracy-'));
    const policy = `accuracy-${randomBytes(4).toString('hex')}`;
    const { urls, procs } = await startServers(setup, options, dir, policy);
    // Many connections at once: the requests really are concurrent at the servers.
    const agent = new Agent({ connections: 256 });
    try {
      const admin = readFileSync(join(dir, 'admin.key'), 'utf8').trim();
      const allowed: number[] = [];
      const unavailable: number[] = [];
      for (let round = 1; round <= options.rounds; round++) {
        const n = await oneRound(urls, admin, options.requests, agent);
        allowed.push(n.allowed);
        unavailable.push(n.unavailable);
        log(`${setup.name} round ${round}: ${n.allowed} of ${options.requests} allowed (limit ${options.limit}), ${n.unavailable} refused as the limiter timed out`);
      }
      result.setups.push({ name: setup.name, allowed, overshoot: allowed.map((n) => n - options.limit), unavailable, skipped: null });
    } finally {
      await agent.close();
      await Promise.all(procs.map((p) => p.stop()));
      rmSync(dir, { recursive: true, force: true });
    }
  }
  return result;
}

export function accuracyMarkdown(r: AccuracyResult): string {
  const lines = [
    `${r.options.requests} concurrent \`GET /v1/keys\` with one key against a per-key limit of ${r.options.limit} per hour, ${r.options.rounds} rounds (a fresh key each). Goal: exactly ${r.options.limit} allowed (0 overshoot).`,
    '',
    '| setup | allowed per round | overshoot per round | 503 (limiter step timed out, policy fails closed) | goal |',
    '|---|---|---|---|---|',
  ];
  for (const s of r.setups) {
    if (s.skipped) lines.push(`| ${s.name} | skipped: ${s.skipped} | | | |`);
    else lines.push(`| ${s.name} | ${s.allowed.join(', ')} | ${s.overshoot.join(', ')} | ${s.unavailable.join(', ')} | ${s.overshoot.every((o) => o === 0) ? 'met' : 'missed'} |`);
  }
  return `${lines.join('\n')}\n`;
}
