// `npm test`: the whole suite on SQLite, then again on PostgreSQL (each test in
// its own schema). With CI=true a missing PostgreSQL fails the run instead of
// skipping it.
import { spawnSync } from 'node:child_process';
import pg from 'pg';

const PG_URL = process.env.PORTCULLIS_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const ci = process.env.CI === 'true';
const files = process.argv.slice(2);
// --test-force-exit: a file whose tests are done exits even if something it
// started is still running (a leaked timer once kept a file alive until CI's
// time limit). Each pass is bounded as well, so a hang fails loudly.
const PASS_TIMEOUT_MS = 40 * 60_000;
const args = ['--test', '--test-concurrency=4', '--test-timeout=120000', '--test-force-exit', ...(files.length > 0 ? files : ['test/**/*.test.ts', 'src/**/*.test.ts'])];

async function reachable(url: string): Promise<string | null> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return null;
  } catch (err) {
    return (err as Error).message;
  } finally {
    await client.end().catch(() => undefined);
  }
}

function run(engine: string, env: NodeJS.ProcessEnv): number {
  process.stdout.write(`\n== test suite on ${engine} ==\n`);
  const { PORTCULLIS_TEST_DATABASE_URL: _drop, ...base } = process.env;
  const res = spawnSync(process.execPath, args, { stdio: 'inherit', env: { ...base, ...env }, timeout: PASS_TIMEOUT_MS });
  if (res.error) process.stderr.write(`\nthe ${engine} pass was stopped: ${res.error.message}\n`);
  return res.status ?? 1;
}

const results: Record<string, number> = {};
if (process.env.PORTCULLIS_TEST_ENGINES !== 'postgres') results.sqlite = run('sqlite', {});
if (process.env.PORTCULLIS_TEST_ENGINES !== 'sqlite') {
  const problem = await reachable(PG_URL);
  if (problem === null) results.postgres = run('postgres', { PORTCULLIS_TEST_DATABASE_URL: PG_URL });
  else if (ci) {
    process.stderr.write(`PostgreSQL is not reachable at ${PG_URL} (${problem}); CI=true never skips it.\n`);
    results.postgres = 1;
  } else {
    process.stderr.write(`\nPostgreSQL is not reachable at ${PG_URL} (${problem}): its pass is skipped. Set CI=true to fail instead.\n`);
  }
}
const failed = Object.entries(results).filter(([, code]) => code !== 0).map(([engine]) => engine);
process.stdout.write(`\nengines: ${Object.entries(results).map(([e, c]) => `${e} ${c === 0 ? 'passed' : 'failed'}`).join(', ')}\n`);
process.exit(failed.length > 0 ? 1 : 0);
