// What the benches that start the real server share: its environment, a store
// directory on a real disk, and reading its /metrics.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export function serverEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  // Only the settings given here: a PORTCULLIS_* variable from the caller's shell must not change the subject.
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('PORTCULLIS_')) env[k] = v;
  return { ...env, PORTCULLIS_HOST: '127.0.0.1', PORTCULLIS_LOG_LEVEL: 'info', ...extra };
}

/** A store directory on a disk: on a tmpfs an fsync costs nothing and a durable-commit bench would measure nothing. */
export function storeDir(bench: string, engine: string): { dir: string; fileSystem: string | null } {
  const fsType = (path: string): string | null => spawnSync('stat', ['-f', '-c', '%T', path], { encoding: 'utf8' }).stdout?.trim() || null;
  let dir = mkdtempSync(join(tmpdir(), `portcullis-bench-${bench}-${engine}-`));
  if (fsType(dir) === 'tmpfs') {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(join(ROOT, 'data'), { recursive: true });
    dir = mkdtempSync(join(ROOT, 'data', `bench-${bench}-${engine}-`));
  }
  return { dir, fileSystem: fsType(dir) };
}

export async function metricsOf(base: string, admin: string): Promise<string> {
  const res = await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${admin}` } });
  if (!res.ok) throw new Error(`GET /metrics: ${res.status}`);
  return res.text();
}

/** A family's samples summed over their labels, only those whose line contains `match` when given. */
export function sumOf(text: string, name: string, match = ''): number {
  let total = 0;
  for (const line of text.split('\n')) {
    if (!(line.startsWith(`${name}{`) || line.startsWith(`${name} `)) || !line.includes(match)) continue;
    total += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return total;
}
