// Group commit of inbound deliveries (src/storage/groupCommit.ts): concurrent
// requests share durable commits, dedup stays exact inside a batch, and a batch
// that cannot commit is refused as a whole.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { sign as octokitSign } from '@octokit/webhooks-methods';
import Database from 'better-sqlite3';
import pg from 'pg';
import { queryRows } from '../harness/db.ts';
import { TEST_DATABASE_URL, TEST_ENGINE } from '../harness/engine.ts';
import { startHarness } from '../harness/startHarness.ts';
import type { Harness } from '../harness/startHarness.ts';
import { startTcpProxy } from '../harness/tcpProxy.ts';

interface Source {
  id: string;
  secret: string;
  url: string;
}

interface Answer {
  status: number;
  eventId?: string;
  duplicate?: boolean;
  code?: string;
  retryAfter: string | null;
}

async function githubSource(h: Harness): Promise<Source> {
  const res = await h.post('/v1/sources', { body: { name: 'GitHub', type: 'github' } });
  assert.equal(res.statusCode, 201, res.body);
  return res.json<Source>();
}

interface Signed {
  body: string;
  headers: Record<string, string>;
}

async function sign(src: Source, delivery: string): Promise<Signed> {
  const body = JSON.stringify({ ref: 'refs/heads/main', after: delivery, commits: [{ message: 'batched' }] });
  return { body, headers: { 'content-type': 'application/json', 'x-github-event': 'push', 'x-github-delivery': delivery, 'x-hub-signature-256': await octokitSign(src.secret, body) } };
}

/**
 * Signed GitHub deliveries, all sent at once as concurrent providers would.
 * Signed first, then injected together: the client shares the server's thread
 * here, and anything between the sends (signing, socket set-up) would space the
 * requests out so that each one had a commit to itself.
 */
async function deliverAll(h: Harness, src: Source, deliveries: string[]): Promise<Answer[]> {
  const signed = await Promise.all(deliveries.map((d) => sign(src, d)));
  const responses = await Promise.all(signed.map(({ body, headers }) => h.post(src.url, { key: null, payload: body, headers })));
  return responses.map((res) => {
    const retryAfter = res.headers['retry-after'];
    return { status: res.statusCode, ...res.json<{ eventId?: string; duplicate?: boolean; code?: string }>(), retryAfter: retryAfter === undefined ? null : String(retryAfter) };
  });
}

const count = async (h: Harness, table: string): Promise<number> => Number((await queryRows<{ n: number | string }>(h, `SELECT count(*) AS n FROM ${table}`))[0]!.n);

/** A Prometheus sample without labels, e.g. `portcullis_ingest_commits_total`. */
function sample(metrics: string, name: string): number {
  const line = metrics.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? 0 : Number(line.slice(name.length + 1));
}

test('200 concurrent deliveries with repeated delivery ids are each stored once, in fewer commits than requests', async (t) => {
  const h = await startHarness(t);
  const gh = await githubSource(h);
  // 150 distinct deliveries; the first 50 of them are sent twice, the copies among the others.
  const ids = Array.from({ length: 200 }, (_, i) => `guid-${i % 150}`);
  const answers = await deliverAll(h, gh, ids);

  assert.deepEqual(
    answers.filter((a) => a.status !== 200),
    [],
  );
  const byId = new Map<string, Answer[]>();
  ids.forEach((id, i) => byId.set(id, [...(byId.get(id) ?? []), answers[i]!]));
  const stored = await queryRows<{ id: string; delivery_id: string }>(h, 'SELECT id, delivery_id FROM events');
  assert.equal(stored.length, 150);
  const storedId = new Map(stored.map((r) => [r.delivery_id, r.id]));
  for (const [id, copies] of byId) {
    // Every copy is answered with the stored event's id; exactly one of them stored it.
    assert.deepEqual(new Set(copies.map((c) => c.eventId)), new Set([storedId.get(id)]), id);
    assert.equal(copies.filter((c) => c.duplicate === false).length, 1, id);
  }
  assert.equal(await count(h, 'jobs'), 150);

  const metrics = (await h.get('/metrics')).body;
  const commits = sample(metrics, 'portcullis_ingest_commits_total');
  assert.ok(commits >= 1 && commits < 200, `${commits} commits for 200 deliveries`);
  assert.equal(sample(metrics, 'portcullis_ingest_batch_size_sum'), 200);
  assert.equal(sample(metrics, 'portcullis_ingest_batch_size_count'), commits);
  assert.match(metrics, new RegExp(`portcullis_webhooks_received_total\\{source="${gh.id}",type="github.push"\\} 150`));
  assert.match(metrics, new RegExp(`portcullis_webhooks_duplicates_total\\{source="${gh.id}",type="github.push"\\} 50`));
});

test('copies of one delivery sent together are stored once and answered with one event id', async (t) => {
  const h = await startHarness(t);
  const gh = await githubSource(h);
  // Ten rounds of ten simultaneous copies each of five deliveries: copies share batches.
  for (let round = 0; round < 10; round++) {
    const ids = Array.from({ length: 50 }, (_, i) => `r${round}-d${i % 5}`);
    const answers = await deliverAll(h, gh, ids);
    assert.ok(answers.every((a) => a.status === 200));
    for (let d = 0; d < 5; d++) {
      const copies = answers.filter((_, i) => ids[i] === `r${round}-d${d}`);
      assert.equal(new Set(copies.map((c) => c.eventId)).size, 1);
      assert.equal(copies.filter((c) => !c.duplicate).length, 1);
    }
  }
  assert.equal(await count(h, 'events'), 50);
});

/**
 * Makes the store refuse writes while reads still work, so deliveries get as far
 * as the commit: on SQLite another connection holds the write lock (the batch
 * waits out busy_timeout, then SQLITE_BUSY); on PostgreSQL a table lock holds the
 * batch's INSERT and the network to the server is then cut under it.
 */
async function blockCommits(t: TestContext): Promise<{ h: Harness; whileBlocked: <T>(send: () => Promise<T>) => Promise<T> }> {
  if (TEST_ENGINE === 'sqlite') {
    const h = await startHarness(t);
    return {
      h,
      async whileBlocked(send) {
        const other = new Database(`${h.dataDir}/portcullis.db`);
        try {
          other.prepare('BEGIN IMMEDIATE').run();
          return await send();
        } finally {
          if (other.inTransaction) other.prepare('ROLLBACK').run();
          other.close();
        }
      },
    };
  }
  const direct = new URL(TEST_DATABASE_URL!);
  const proxy = await startTcpProxy({ host: direct.hostname, port: Number(direct.port || 5432) });
  t.after(() => proxy.close());
  const h = await startHarness(t, { env: { PORTCULLIS_DATABASE_URL: proxy.via(TEST_DATABASE_URL!) } });
  const schema = h.config.databaseSchema;
  return {
    h,
    async whileBlocked(send) {
      const locker = new pg.Client({ connectionString: TEST_DATABASE_URL, options: `-c search_path=${schema}` });
      await locker.connect();
      try {
        await locker.query('BEGIN');
        await locker.query('LOCK TABLE event_dedup IN SHARE ROW EXCLUSIVE MODE');
        const sent = send();
        // Cut the network once a batch is waiting on the lock, i.e. mid-transaction.
        let waited = false;
        for (let i = 0; i < 200 && !waited; i++) {
          const waiting = await locker.query<{ n: string }>(
            `SELECT count(*) AS n FROM pg_locks l JOIN pg_class c ON c.oid = l.relation JOIN pg_namespace s ON s.oid = c.relnamespace
             WHERE s.nspname = $1 AND c.relname = 'event_dedup' AND NOT l.granted`,
            [schema],
          );
          waited = Number(waiting.rows[0]!.n) > 0;
          if (!waited) await sleep(25);
        }
        proxy.cut();
        try {
          const answers = await sent;
          assert.ok(waited, 'no batch was waiting on the lock when the network was cut');
          return answers;
        } finally {
          proxy.restore();
        }
      } finally {
        await locker.query('ROLLBACK').catch(() => undefined);
        await locker.end();
      }
    },
  };
}

test('a batch that cannot commit is refused as a whole with 503, and the retries are stored once each', async (t) => {
  const { h, whileBlocked } = await blockCommits(t);
  const gh = await githubSource(h);
  const ids = Array.from({ length: 20 }, (_, i) => `fail-${i % 15}`);
  const refused = await whileBlocked(() => deliverAll(h, gh, ids));
  for (const a of refused) {
    assert.equal(a.status, 503);
    assert.equal(a.code, 'store-unavailable');
    assert.ok(Number(a.retryAfter) > 0);
  }
  assert.equal(await count(h, 'events'), 0);
  assert.equal(await count(h, 'jobs'), 0);

  // The providers retry: every delivery is stored, once.
  const retried = await deliverAll(h, gh, ids);
  assert.ok(retried.every((a) => a.status === 200));
  assert.equal(retried.filter((a) => !a.duplicate).length, 15);
  assert.equal(await count(h, 'events'), 15);
  assert.equal(await count(h, 'jobs'), 15);
});

test(
  'on PostgreSQL, while the running batches hang on a server that stopped answering, the deliveries behind them get 503 instead of waiting',
  { skip: TEST_ENGINE !== 'postgres' && 'SQLite has no server to hang: a busy store answers SQLITE_BUSY after its timeout' },
  async (t) => {
    const direct = new URL(TEST_DATABASE_URL!);
    const proxy = await startTcpProxy({ host: direct.hostname, port: Number(direct.port || 5432) });
    t.after(() => proxy.close());
    const h = await startHarness(t, { env: { PORTCULLIS_DATABASE_URL: proxy.via(TEST_DATABASE_URL!) } });
    const gh = await githubSource(h);
    assert.equal((await deliverAll(h, gh, ['warm-1', 'warm-2']))[0]!.status, 200);
    // Open connections for the pool to hand out: the batches then hang on them rather than
    // failing to connect (which the connect timeout already answers with 503).
    await Promise.all(Array.from({ length: 10 }, () => h.get('/v1/events?limit=1')));

    proxy.stall();
    // Two batches take the two commit slots and hang; the third delivery waits behind them.
    const hung = [deliverAll(h, gh, ['hung-1']), sleep(50).then(() => deliverAll(h, gh, ['hung-2']))];
    await sleep(200);
    const behind = deliverAll(h, gh, ['behind-1']);
    const answered = await Promise.race([behind.then(([a]) => a!), sleep(15_000).then(() => null)]);
    assert.ok(answered, 'the delivery behind the hung batches got no answer');
    assert.equal(answered.status, 503);
    assert.equal(answered.code, 'store-unavailable');

    // The network comes back broken (as after a server restart): the hung ones fail too, never a 2xx.
    proxy.cut();
    for (const [a] of await Promise.all(hung)) assert.equal(a!.status, 503);
    proxy.restore();
    // The providers retry until stored (the pool drops the connections the cut broke as it meets them).
    const deadline = Date.now() + 15_000;
    let left = ['hung-1', 'hung-2', 'behind-1'];
    while (left.length > 0 && Date.now() < deadline) {
      const answers = await deliverAll(h, gh, left);
      left = left.filter((_, i) => answers[i]!.status !== 200);
      if (left.length > 0) await sleep(100);
    }
    assert.deepEqual(left, [], 'stored once the server answers again');
    assert.equal(await count(h, 'events'), 5);
  },
);
