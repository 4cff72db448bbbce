// proxy: Portcullis in proxy mode (key auth, scope check, metering, one log line)
// against nginx (Debian, worker_processes 1, keep-alive to the upstream) proxying
// the same upstream, side by side in one run; p99 overhead over the direct upstream.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './keys-get.ts';
import { runLoad } from './lib/load.ts';
import type { LoadResult } from './lib/load.ts';
import { CPUS, cpuSeconds, freePort, startProcess, waitForHttp } from './lib/procs.ts';
import type { Managed } from './lib/procs.ts';
import { median, round } from './lib/stats.ts';

const CLI = join(ROOT, 'dist/src/cli/main.js');
const UPSTREAM = join(ROOT, 'bench/upstream-server.js');
export const PROXY_RATIO_GOAL = 0.6;

export interface ProxyOptions {
  pairs: number;
  durationS: number;
  warmupS: number;
  connections: number;
}

type Side = 'direct' | 'nginx' | 'portcullis';
interface Run {
  pair: number;
  side: Side;
  load: LoadResult;
  serverCpuPercent: number | null;
}

export interface ProxyResult {
  bench: 'proxy';
  options: ProxyOptions;
  nginxVersion: string | null;
  skipped: string | null;
  medians: Record<Side, { reqPerSec: number; p50Ms: number; p99Ms: number; serverCpuPercent: number | null }> | null;
  ratio: number | null;
  pairRatios: number[];
  p99OverheadMs: { nginx: number; portcullis: number } | null;
  runs: Run[];
}

type Log = (message: string) => void;

function nginxBinary(log: Log): string | null {
  const found = spawnSync('sh', ['-c', 'command -v nginx || ls /usr/sbin/nginx 2>/dev/null'], { encoding: 'utf8' }).stdout.trim().split('\n')[0];
  if (found) return found;
  log('nginx not found: installing it from Debian (apt-get install nginx-light)…');
  const update = spawnSync('apt-get', ['update'], { stdio: 'ignore' });
  const install = spawnSync('apt-get', ['install', '-y', '--no-install-recommends', 'nginx-light'], { stdio: 'ignore', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  if (update.status !== 0 || install.status !== 0) return null;
  return '/usr/sbin/nginx';
}

function nginxConfig(dir: string, listenPort: number, upstreamPort: number): string {
  return `worker_processes 1;
daemon off;
master_process on;
pid ${dir}/nginx.pid;
error_log ${dir}/nginx-error.log warn;
events { worker_connections 1024; }
http {
  access_log /dev/null;
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  upstream backend { server 127.0.0.1:${upstreamPort}; keepalive 32; }
  server {
    listen 127.0.0.1:${listenPort};
    location /api/ {
      proxy_pass http://backend/;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header X-Forwarded-For $remote_addr;
    }
  }
}
`;
}

export async function runProxyBench(options: ProxyOptions, log: Log): Promise<ProxyResult> {
  const result: ProxyResult = { bench: 'proxy', options, nginxVersion: null, skipped: null, medians: null, ratio: null, pairRatios: [], p99OverheadMs: null, runs: [] };
  const nginx = nginxBinary(log);
  if (!nginx) {
    result.skipped = 'nginx is not installed and could not be installed';
    log(result.skipped);
    return result;
  }
  result.nginxVersion = spawnSync(nginx, ['-v'], { encoding: 'utf8' }).stderr.trim();
  log('building dist/ (npm run build)…');
  execFileSync(process.execPath, [join(ROOT, 'scripts/build.ts')], { cwd: ROOT, stdio: 'inherit' });

  const dir = mkdtempSync(join(tmpdir(), 'portcullis-bench-proxy-'));
  const procs: Managed[] = [];
  try {
    // The upstream shares the load generator's core: both proxies pay for it alike.
    const upstreamPort = await freePort();
    const upstream = startProcess({ name: 'upstream', cpu: CPUS.load, command: process.execPath, args: [UPSTREAM], env: { ...process.env, BENCH_PORT: String(upstreamPort) }, cwd: ROOT, stderrPath: join(dir, 'upstream.stderr') });
    procs.push(upstream);
    await waitForHttp(`http://127.0.0.1:${upstreamPort}/`, upstream, 10_000);

    const nginxPort = await freePort();
    for (const sub of ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(join(dir, sub));
    writeFileSync(join(dir, 'nginx.conf'), nginxConfig(dir, nginxPort, upstreamPort));
    const nginxProc = startProcess({ name: 'nginx', cpu: CPUS.server, command: nginx, args: ['-p', dir, '-c', join(dir, 'nginx.conf')], env: process.env, cwd: dir, stderrPath: join(dir, 'nginx.stderr') });
    procs.push(nginxProc);
    await waitForHttp(`http://127.0.0.1:${nginxPort}/api/x`, nginxProc, 10_000);

    const pcPort = await freePort();
    const dataDir = join(dir, 'data');
    const pc = startProcess({
      name: 'portcullis',
      cpu: CPUS.server,
      command: process.execPath,
      args: [CLI, 'serve'],
      env: {
        PATH: process.env.PATH,
        PORTCULLIS_HOST: '127.0.0.1',
        PORTCULLIS_PORT: String(pcPort),
        PORTCULLIS_DATA_DIR: dataDir,
        PORTCULLIS_LOG_LEVEL: 'info',
        PORTCULLIS_PROXY: JSON.stringify({ routes: [{ prefix: '/api/', upstream: `http://127.0.0.1:${upstreamPort}`, scope: 'api:read' }] }),
      },
      cwd: dir,
      stderrPath: join(dir, 'portcullis.stderr'),
    });
    procs.push(pc);
    await waitForHttp(`http://127.0.0.1:${pcPort}/healthz`, pc, 30_000);
    const admin = readFileSync(join(dataDir, 'admin.key'), 'utf8').trim();
    const created = await fetch(`http://127.0.0.1:${pcPort}/v1/keys`, { method: 'POST', headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'bench', scopes: ['api:read'] }) });
    const { secret } = (await created.json()) as { secret: string };
    const auth = { authorization: `Bearer ${secret}` };

    const targets: Record<Side, { url: string; headers: Record<string, string>; proc: Managed }> = {
      direct: { url: `http://127.0.0.1:${upstreamPort}/items/1`, headers: {}, proc: upstream },
      nginx: { url: `http://127.0.0.1:${nginxPort}/api/items/1`, headers: auth, proc: nginxProc },
      portcullis: { url: `http://127.0.0.1:${pcPort}/api/items/1`, headers: auth, proc: pc },
    };
    for (let pair = 1; pair <= options.pairs; pair++) {
      for (const side of ['direct', 'nginx', 'portcullis'] as const) {
        const { url, headers, proc } = targets[side];
        // nginx's work happens in its worker; its master idles.
        const pid = side === 'nginx' ? Number(spawnSync('pgrep', ['-P', String(proc.pid)], { encoding: 'utf8' }).stdout.trim().split('\n')[0]) : proc.pid;
        let cpuStart: number | null = null;
        let wallStart = 0;
        const load = await runLoad({ url, headers, connections: options.connections, durationS: options.durationS, warmupS: options.warmupS }, CPUS.load, () => {
          cpuStart = cpuSeconds(pid);
          wallStart = performance.now();
        });
        const cpuEnd = cpuSeconds(pid);
        const wall = (performance.now() - wallStart) / 1000;
        const serverCpuPercent = cpuStart !== null && cpuEnd !== null ? round((100 * (cpuEnd - cpuStart)) / wall, 1) : null;
        result.runs.push({ pair, side, load, serverCpuPercent });
        log(`pair ${pair}/${options.pairs} ${side.padEnd(10)} ${round(load.reqPerSec)} req/s  p50 ${round(load.latencyMs.p50, 3)} ms  p99 ${round(load.latencyMs.p99, 3)} ms  cpu ${serverCpuPercent ?? '?'}%`);
      }
    }
    const of = (side: Side) => result.runs.filter((r) => r.side === side);
    const summary = (side: Side) => {
      const runs = of(side);
      const cpu = runs.map((r) => r.serverCpuPercent).filter((c): c is number => c !== null);
      return {
        reqPerSec: round(median(runs.map((r) => r.load.reqPerSec))),
        p50Ms: round(median(runs.map((r) => r.load.latencyMs.p50)), 3),
        p99Ms: round(median(runs.map((r) => r.load.latencyMs.p99)), 3),
        serverCpuPercent: cpu.length > 0 ? round(median(cpu), 1) : null,
      };
    };
    result.medians = { direct: summary('direct'), nginx: summary('nginx'), portcullis: summary('portcullis') };
    result.ratio = round(result.medians.portcullis.reqPerSec / result.medians.nginx.reqPerSec, 3);
    result.pairRatios = of('portcullis').map((r, i) => round(r.load.reqPerSec / of('nginx')[i]!.load.reqPerSec, 3));
    result.p99OverheadMs = {
      nginx: round(result.medians.nginx.p99Ms - result.medians.direct.p99Ms, 3),
      portcullis: round(result.medians.portcullis.p99Ms - result.medians.direct.p99Ms, 3),
    };
  } finally {
    await Promise.all(procs.map((p) => p.stop()));
    rmSync(dir, { recursive: true, force: true });
  }
  return result;
}

export function proxyMarkdown(r: ProxyResult): string {
  if (r.skipped || !r.medians) return `Skipped: ${r.skipped}\n`;
  const o = r.options;
  const lines = [
    `\`GET /api/items/1\` through Portcullis proxy mode (key auth, scope, metering, one log line) and through ${r.nginxVersion} (\`worker_processes 1\`, keep-alive to the upstream), and straight to the upstream; ${o.pairs} interleaved rounds of ${o.durationS} s × ${o.connections} connections after ${o.warmupS} s warm-up. Proxies on CPU ${CPUS.server ?? 'any'}, load generator and upstream on CPU ${CPUS.load ?? 'any'}.`,
    '',
    '| side | req/s | p50 ms | p99 ms | proxy CPU % |',
    '|---|--:|--:|--:|--:|',
  ];
  for (const side of ['direct', 'nginx', 'portcullis'] as const) {
    const m = r.medians[side];
    lines.push(`| ${side} | ${m.reqPerSec.toLocaleString('en-US')} | ${m.p50Ms} | ${m.p99Ms} | ${side === 'direct' ? '–' : (m.serverCpuPercent ?? '–')} |`);
  }
  lines.push(
    '',
    `Portcullis/nginx req/s (medians): **${r.ratio}** (goal ≥ ${PROXY_RATIO_GOAL}: ${r.ratio! >= PROXY_RATIO_GOAL ? 'met' : 'missed'}); per round ${r.pairRatios.join(', ')}.`,
    `p99 over the direct upstream: nginx +${r.p99OverheadMs!.nginx} ms, Portcullis +${r.p99OverheadMs!.portcullis} ms.`,
  );
  return `${lines.join('\n')}\n`;
}

export const PROXY_DEFAULTS: ProxyOptions = { pairs: 5, durationS: 10, warmupS: 2, connections: 10 };
