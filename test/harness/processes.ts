/**
 * Process-level helpers: run the real CLI (`src/cli/main.ts`) as child processes
 * with Node 24 (`process.execPath`), and talk to a `serve` child over loopback.
 *
 * Children never inherit the caller's `PORTCULLIS_*` variables, so a developer's
 * shell cannot change what a test sees; each test passes what it means.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { TestContext } from 'node:test';
import { onCleanup } from './cleanup.ts';
import { testStoreConfig } from './engine.ts';

export const REPO_ROOT = resolve(import.meta.dirname, '../..');
export const CLI_PATH = join(REPO_ROOT, 'src/cli/main.ts');

/** How long a `serve` child may take to answer /readyz with 200. */
export const SERVE_READY_TIMEOUT_MS = 20_000;
export const READY_POLL_INTERVAL_MS = 50;
/** A CLI run taking longer than this is killed and reported as hung. */
export const CLI_TIMEOUT_MS = 30_000;

export type Env = Record<string, string | undefined>;

// node:test marks its workers with NODE_TEST_CONTEXT; a child CLI must not think it is one.
const DROPPED_VARIABLES = ['NODE_TEST_CONTEXT', 'NODE_OPTIONS'];

/** The environment of a child: this process's, minus every PORTCULLIS_* variable, plus `env`. */
export function childEnv(env: Env = {}): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (name.startsWith('PORTCULLIS_') || DROPPED_VARIABLES.includes(name)) continue;
    out[name] = value;
  }
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined) delete out[name];
    else out[name] = value;
  }
  return out;
}

/** A temp folder for one test, with a store on the test engine. */
export interface Workspace {
  /** The temp folder; children run here, so `./data` is `dataDir`. */
  dir: string;
  /** `<dir>/data`, the default data folder seen from `dir`. */
  dataDir: string;
  databaseUrl: string;
  databaseSchema: string;
  /** PORTCULLIS_DATA_DIR, PORTCULLIS_DATABASE_URL and PORTCULLIS_DATABASE_SCHEMA for this store. */
  env: Record<string, string>;
}

/** A fresh temp folder and store (SQLite file, or a new PostgreSQL schema), removed after the test. */
export async function createWorkspace(t: TestContext): Promise<Workspace> {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-proc-'));
  const dataDir = join(dir, 'data');
  mkdirSync(dataDir);
  const store = await testStoreConfig(dataDir);
  onCleanup(t, async () => {
    await store.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });
  return {
    dir,
    dataDir,
    databaseUrl: store.databaseUrl,
    databaseSchema: store.databaseSchema,
    env: { PORTCULLIS_DATA_DIR: dataDir, PORTCULLIS_DATABASE_URL: store.databaseUrl, PORTCULLIS_DATABASE_SCHEMA: store.databaseSchema },
  };
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Wall-clock time the child ran. */
  ms: number;
}

export interface CliOptions {
  /** Working folder of the child; defaults to the OS temp folder. */
  cwd?: string;
  timeoutMs?: number;
  /** Written to the child's stdin, which is then closed. */
  stdin?: string;
}

/** Runs `portcullis <args>` to completion. A hung child is killed and its result returned. */
export function runCli(args: string[], env: Env = {}, options: CliOptions = {}): Promise<CliResult> {
  const started = performance.now();
  const child = spawn(process.execPath, [CLI_PATH, ...args], { cwd: options.cwd ?? tmpdir(), env: childEnv(env), stdio: [options.stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
  if (options.stdin !== undefined) child.stdin!.end(options.stdin);
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout!.on('data', (b: Buffer) => out.push(b));
  child.stderr!.on('data', (b: Buffer) => err.push(b));
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? CLI_TIMEOUT_MS);
  return new Promise((resolvePromise, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolvePromise({ code, signal, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), ms: performance.now() - started });
    });
  });
}

/** Runs the CLI, fails unless it exits 0, and parses its stdout as JSON. */
export async function runCliJson<T = Record<string, unknown>>(args: string[], env: Env = {}, options: CliOptions = {}): Promise<T> {
  const res = await runCli([...args, '--json'], env, options);
  if (res.code !== 0) throw new Error(`portcullis ${args.join(' ')} exited ${res.code}: ${res.stderr}${res.stdout}`);
  return JSON.parse(res.stdout) as T;
}

/** A TCP port nothing listens on right now: bound on port 0, then released. */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolvePromise, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, host, () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolvePromise(port));
    });
  });
}

export interface HttpResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  json<T = Record<string, unknown>>(): T;
  /** For https: whether the server's certificate verified. */
  authorized: boolean | null;
}

export interface HttpOptions {
  method?: string;
  /** Sent as `Authorization: Bearer <key>`. */
  key?: string | null;
  body?: unknown;
  headers?: Record<string, string>;
  /** CA certificate(s) to trust for https. */
  ca?: Buffer | string;
  timeoutMs?: number;
}

/** One HTTP(S) request on a fresh connection (no pooling, so no socket outlives the test). */
export function httpRequest(url: string, options: HttpOptions = {}): Promise<HttpResponse> {
  const target = new URL(url);
  const headers: Record<string, string> = { ...options.headers };
  if (options.key) headers.authorization = `Bearer ${options.key}`;
  let payload: string | undefined;
  if (options.body !== undefined) {
    payload = JSON.stringify(options.body);
    headers['content-type'] ??= 'application/json';
  }
  const request = target.protocol === 'https:' ? https.request : http.request;
  return new Promise((resolvePromise, reject) => {
    const req = request(
      target,
      { method: options.method ?? 'GET', headers, agent: false, timeout: options.timeoutMs ?? 10_000, ...(options.ca ? { ca: options.ca } : {}) },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (b: Buffer) => chunks.push(b));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          const socket = res.socket as { authorized?: boolean } | null;
          resolvePromise({
            status: res.statusCode ?? 0,
            headers: res.headers,
            text,
            json: <T>() => JSON.parse(text) as T,
            authorized: target.protocol === 'https:' ? Boolean(socket?.authorized) : null,
          });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`request to ${url} timed out`)));
    req.on('error', reject);
    req.end(payload);
  });
}

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface ServeProcess {
  child: ChildProcess;
  /** e.g. `http://127.0.0.1:41234` (https with TLS). */
  url: string;
  port: number;
  dataDir: string;
  /** The environment `serve` ran with; reuse it to start another process on the same store. */
  env: Record<string, string>;
  /** Contents of `<dataDir>/admin.key` once ready, or null if there is none. */
  adminKey: string | null;
  /** Everything the process wrote to stdout and stderr so far. */
  output(): string;
  /** Resolves when the process has exited. */
  exited: Promise<ExitStatus>;
  /** Sends `signal` (default SIGTERM) and waits for the exit; `ms` is how long that took. */
  stop(signal?: NodeJS.Signals): Promise<ExitStatus & { ms: number }>;
}

/**
 * What processes sharing `workspace`'s store need besides their own data folder:
 * its database and one root secret (tests spread it into each process's env).
 */
export function sharedStoreEnv(workspace: Workspace): Record<string, string> {
  return { PORTCULLIS_SECRET_KEY: 'shared-root-secret-for-two-processes-0123456789', PORTCULLIS_DATABASE_URL: workspace.databaseUrl, PORTCULLIS_DATABASE_SCHEMA: workspace.databaseSchema };
}

export interface ServeOptions {
  /** Folder and store to use; a fresh one by default. */
  workspace?: Workspace;
  /** Added to the workspace's variables (so may override them); PORTCULLIS_PORT is always a free port. */
  env?: Env;
  /** Extra `serve` arguments, e.g. `--tls-cert`. */
  args?: string[];
  /** Trust this CA and talk https (for TLS). */
  ca?: Buffer | string;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function waitReady(url: string, ca: Buffer | string | undefined, exited: () => ExitStatus | null, deadline: number): Promise<'ready' | 'exited'> {
  while (performance.now() < deadline) {
    if (exited()) return 'exited';
    try {
      const res = await httpRequest(`${url}/readyz`, { timeoutMs: 2000, ...(ca ? { ca } : {}) });
      if (res.status === 200) return 'ready';
    } catch {
      // not listening yet
    }
    await sleep(READY_POLL_INTERVAL_MS);
  }
  throw new Error(`serve did not become ready at ${url} within ${SERVE_READY_TIMEOUT_MS} ms`);
}

/**
 * Starts `portcullis serve` on a free loopback port and waits until /readyz
 * answers 200. The child is killed after the test if it is still running.
 */
export async function startServe(t: TestContext, options: ServeOptions = {}): Promise<ServeProcess> {
  const workspace = options.workspace ?? (await createWorkspace(t));
  // Another process may take the port between freePort() and listen: try again then.
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries({ ...workspace.env, PORTCULLIS_HOST: '127.0.0.1', ...options.env, PORTCULLIS_PORT: String(port) })) if (v !== undefined) env[k] = v;
    const dataDir = env.PORTCULLIS_DATA_DIR ?? join(workspace.dir, 'data');
    const child = spawn(process.execPath, [CLI_PATH, 'serve', ...(options.args ?? [])], { cwd: workspace.dir, env: childEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
    const chunks: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => chunks.push(b));
    child.stderr.on('data', (b: Buffer) => chunks.push(b));
    const output = (): string => Buffer.concat(chunks).toString('utf8');
    let status: ExitStatus | null = null;
    const exited = new Promise<ExitStatus>((r) => {
      child.once('close', (code, signal) => {
        status = { code, signal };
        r(status);
      });
    });
    onCleanup(t, async () => {
      if (status) return;
      child.kill('SIGKILL');
      await exited;
    });

    const url = `${options.ca ? 'https' : 'http'}://127.0.0.1:${port}`;
    const outcome = await waitReady(url, options.ca, () => status, performance.now() + SERVE_READY_TIMEOUT_MS).catch(async (err: Error) => {
      child.kill('SIGKILL');
      await exited;
      throw new Error(`${err.message}\n--- serve output ---\n${output()}`);
    });
    if (outcome === 'exited') {
      await exited;
      if (attempt < 3 && /EADDRINUSE/.test(output())) continue;
      throw new Error(`serve exited (${JSON.stringify(status)}) before it was ready\n--- serve output ---\n${output()}`);
    }

    let adminKey: string | null = null;
    try {
      adminKey = readFileSync(join(dataDir, 'admin.key'), 'utf8').trim();
    } catch {
      adminKey = null;
    }
    return {
      child,
      url,
      port,
      dataDir,
      env,
      adminKey,
      output,
      exited,
      async stop(signal = 'SIGTERM') {
        const started = performance.now();
        if (!status) child.kill(signal);
        const result = await exited;
        return { ...result, ms: performance.now() - started };
      },
    };
  }
}

/** Polls `check` every `intervalMs` until it returns true; returns the time it took, or throws at `timeoutMs`. */
export async function waitFor(check: () => Promise<boolean>, timeoutMs: number, intervalMs = 50): Promise<number> {
  const started = performance.now();
  while (performance.now() - started < timeoutMs) {
    if (await check()) return performance.now() - started;
    await sleep(intervalMs);
  }
  throw new Error(`condition not met within ${timeoutMs} ms`);
}
