import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Where each side runs: the server under test on one core, the load generator
 * on another, so they never steal each other's cycles. `null` on a one-core
 * machine, where pinning both to the same core would only add noise.
 */
export const CPUS: { server: number | null; load: number | null } =
  availableParallelism() >= 2 && hasTaskset() ? { server: 0, load: 1 } : { server: null, load: null };

/** How long a process gets to exit after SIGTERM before SIGKILL. */
export const STOP_GRACE_MS = 10_000;

function hasTaskset(): boolean {
  return spawnSync('taskset', ['--version'], { stdio: 'ignore' }).status === 0;
}

const running = new Set<ChildProcess>();

/** Kills every child this process started; used on Ctrl-C and on exit. */
export function killAll(signal: NodeJS.Signals = 'SIGTERM'): void {
  for (const child of running) child.kill(signal);
}
process.on('exit', () => killAll('SIGKILL'));

/** Registers a child so Ctrl-C or an early exit stops it too. */
export function track(child: ChildProcess): void {
  running.add(child);
  child.once('exit', () => running.delete(child));
}

/** Pins the calling process (e.g. the orchestrator) to a core, so it stays off the server's. */
export function pinSelf(cpu: number | null): void {
  if (cpu !== null) spawnSync('taskset', ['-p', '-c', String(cpu), String(process.pid)], { stdio: 'ignore' });
}

export interface Managed {
  name: string;
  pid: number;
  /** Resolves with the exit code (or signal name) once the process is gone. */
  exited: Promise<number | string | null>;
  stderrPath: string;
  stop(): Promise<void>;
}

export interface StartOptions {
  name: string;
  cpu: number | null;
  command: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  cwd: string;
  /** Where stdout goes (the server's JSON log); `/dev/null` by default. */
  stdoutPath?: string;
  stderrPath: string;
}

/** Starts a long-running child pinned with `taskset -c <cpu>` (taskset execs, so the pid is the program's). */
export function startProcess(options: StartOptions): Managed {
  const out = openSync(options.stdoutPath ?? '/dev/null', 'w');
  const err = openSync(options.stderrPath, 'w');
  const [command, args] = options.cpu === null ? [options.command, options.args] : ['taskset', ['-c', String(options.cpu), options.command, ...options.args]];
  const child = spawn(command, args, { cwd: options.cwd, env: options.env, stdio: ['ignore', out, err] });
  closeSync(out);
  closeSync(err);
  track(child);
  const exited = new Promise<number | string | null>((resolve) => {
    child.once('exit', (code, signal) => resolve(code ?? signal));
    child.once('error', () => {
      running.delete(child);
      resolve('spawn-error');
    });
  });
  if (child.pid === undefined) throw new Error(`${options.name}: could not start ${command}`);
  return {
    name: options.name,
    pid: child.pid,
    exited,
    stderrPath: options.stderrPath,
    async stop() {
      if (!running.has(child)) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
      await exited;
      clearTimeout(timer);
    },
  };
}

export function stderrTail(proc: Managed, chars = 2000): string {
  try {
    return readFileSync(proc.stderrPath, 'utf8').slice(-chars);
  } catch {
    return '';
  }
}

/** Polls `url` until it answers 2xx; fails early if the process dies. */
export async function waitForHttp(url: string, proc: Managed, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let gone = false;
  void proc.exited.then(() => {
    gone = true;
  });
  while (Date.now() < deadline) {
    if (gone) throw new Error(`${proc.name} exited before it was ready:\n${stderrTail(proc)}`);
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
      await res.arrayBuffer();
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
  throw new Error(`${proc.name} was not ready within ${timeoutMs} ms:\n${stderrTail(proc)}`);
}

/** A port that was free a moment ago on loopback. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (typeof address !== 'object' || !address) throw new Error('no port');
  return address.port;
}

/** A `kB` field of /proc/<pid>/status, e.g. VmHWM (peak resident set) or VmRSS. */
export function procStatusKb(pid: number, field: 'VmHWM' | 'VmRSS'): number | null {
  try {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) : null;
  } catch {
    return null;
  }
}

const CLOCK_TICKS_PER_S = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout?.trim()) || 100;

/** CPU seconds (user + system) the process has used so far, from /proc/<pid>/stat. */
export function cpuSeconds(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_S;
  } catch {
    return null;
  }
}
