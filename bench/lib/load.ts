import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { MEASURING } from './loadTypes.ts';
import type { LoadOptions, LoadResult } from './loadTypes.ts';
import { track } from './procs.ts';

export type { LoadOptions, LoadResult } from './loadTypes.ts';

const LOADGEN = fileURLToPath(new URL('./loadgen.ts', import.meta.url));

/**
 * Runs autocannon in its own process, pinned to `cpu` with taskset. Calls
 * `onMeasuring` when the warm-up is over. Rejects on any non-2xx or error.
 */
export async function runLoad(options: LoadOptions, cpu: number | null, onMeasuring?: () => void): Promise<LoadResult> {
  const args = cpu === null ? [process.execPath, LOADGEN] : ['taskset', '-c', String(cpu), process.execPath, LOADGEN];
  const child = spawn(args[0]!, args.slice(1), { env: { ...process.env, BENCH_LOAD: JSON.stringify(options) }, stdio: ['ignore', 'pipe', 'pipe'] });
  track(child);
  let stdout = '';
  let stderr = '';
  let measuring = false;
  child.stdout.setEncoding('utf8').on('data', (s: string) => {
    stdout += s;
    if (!measuring && stdout.startsWith(`${MEASURING}\n`)) {
      measuring = true;
      onMeasuring?.();
    }
  });
  child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  if (code !== 0) throw new Error(`load generator failed (exit ${code}): ${stderr.slice(-2000)}`);
  const result = JSON.parse(stdout.slice(stdout.indexOf('\n') + 1)) as LoadResult;
  if (result.non2xx > 0 || result.errors > 0 || result.ok === 0) {
    throw new Error(`load against ${options.url} got ${result.non2xx} non-2xx responses and ${result.errors} errors (${result.ok} ok)`);
  }
  return result;
}
