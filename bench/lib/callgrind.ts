import { execFile, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { runLoad } from './load.ts';
import { startProcess, waitForHttp } from './procs.ts';

const run = promisify(execFile);

/** Under valgrind the server starts and answers ~50x slower than natively. */
export const CALLGRIND_READY_TIMEOUT_MS = 300_000;

export interface InstructionCount {
  /** Requests counted (sent one at a time, after the warm-up). */
  requests: number;
  /** User-space instructions the server executed for them, all threads. */
  instructions: number;
  perRequest: number;
  /** Wall time of the counted part, under valgrind. */
  wallS: number;
}

export interface CallgrindTarget {
  name: string;
  /** Arguments to node (script and its arguments). */
  nodeArgs: string[];
  env: NodeJS.ProcessEnv;
  cwd: string;
  /** Holds the callgrind output and the server's stderr. */
  dir: string;
  readyUrl: string;
  url: string;
  headers: Record<string, string>;
}

/** Whether valgrind and callgrind_control can be run here. */
export function callgrindAvailable(): boolean {
  return (
    spawnSync('valgrind', ['--version'], { stdio: 'ignore' }).status === 0 && spawnSync('callgrind_control', ['--version'], { stdio: 'ignore' }).status === 0
  );
}

/**
 * Instructions per request by callgrind: the server starts with instrumentation
 * off (so start-up and warm-up run fast and are not counted), gets `warmup`
 * sequential requests so V8 has optimised the hot path, then counting is
 * switched on for exactly `requests` sequential requests and dumped.
 * Kernel work (syscalls, loopback TCP) is not counted: callgrind sees user space only.
 */
export async function countInstructions(
  target: CallgrindTarget,
  options: { warmup: number; requests: number; serverCpu: number | null; loadCpu: number | null },
): Promise<InstructionCount> {
  const outPattern = join(target.dir, `callgrind.${target.name}.%p`);
  const proc = startProcess({
    name: `${target.name} (callgrind)`,
    cpu: options.serverCpu,
    command: 'valgrind',
    args: ['--tool=callgrind', '--instr-atstart=no', `--callgrind-out-file=${outPattern}`, process.execPath, ...target.nodeArgs],
    env: target.env,
    cwd: target.cwd,
    stderrPath: join(target.dir, `callgrind.${target.name}.stderr`),
  });
  try {
    await waitForHttp(target.readyUrl, proc, CALLGRIND_READY_TIMEOUT_MS);
    const load = { url: target.url, headers: target.headers, connections: 1 };
    await runLoad({ ...load, amount: options.warmup }, options.loadCpu);
    await run('callgrind_control', ['--instr=on', String(proc.pid)]);
    const started = performance.now();
    const counted = await runLoad({ ...load, amount: options.requests }, options.loadCpu);
    const wallS = (performance.now() - started) / 1000;
    await run('callgrind_control', ['--dump', String(proc.pid)]);
    const instructions = readTotals(target.dir, `callgrind.${target.name}.${proc.pid}.`);
    return { requests: counted.ok, instructions, perRequest: instructions / counted.ok, wallS };
  } finally {
    await proc.stop();
  }
}

/** The `totals:` line of the newest dump (`<prefix>1`, `<prefix>2`, …). */
function readTotals(dir: string, prefix: string): number {
  const dumps = readdirSync(dir)
    .filter((f) => f.startsWith(prefix) && /^\d+$/.test(f.slice(prefix.length)))
    .sort((a, b) => Number(a.slice(prefix.length)) - Number(b.slice(prefix.length)));
  const last = dumps.at(-1);
  if (!last) throw new Error(`no callgrind dump named ${prefix}* in ${dir}`);
  const match = /^(?:totals|summary): (\d+)/m.exec(readFileSync(join(dir, last), 'utf8'));
  if (!match) throw new Error(`no totals in ${last}`);
  return Number(match[1]);
}
