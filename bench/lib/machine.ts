import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, loadavg, release, totalmem } from 'node:os';

export interface Machine {
  cpus: number;
  cpuModel: string;
  memoryMb: number;
  kernel: string;
  node: string;
  /** 1, 5 and 15 minute load averages when the run started: other work on the box shows here. */
  loadAverage: number[];
  commit: string | null;
  /** Whether `perf stat -e instructions` counts here (it does not on most VMs). */
  perfInstructions: boolean;
}

function cpuModel(): string {
  try {
    return /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

/** Whether hardware instruction counting works: `perf stat` prints "<not supported>" in most VMs. */
export function perfCountsInstructions(): boolean {
  const res = spawnSync('perf', ['stat', '-x,', '-e', 'instructions', 'true'], { encoding: 'utf8' });
  return res.status === 0 && /^\d+,/m.test(res.stderr ?? '');
}

export function describeMachine(cwd: string): Machine {
  const git = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd, encoding: 'utf8' });
  return {
    // All online CPUs, not this process's affinity (the orchestrator pins itself to one).
    cpus: cpus().length,
    cpuModel: cpuModel(),
    memoryMb: Math.round(totalmem() / 2 ** 20),
    kernel: release(),
    node: process.version,
    loadAverage: loadavg().map((l) => Math.round(l * 100) / 100),
    commit: git.status === 0 ? git.stdout.trim() : null,
    perfInstructions: perfCountsInstructions(),
  };
}
