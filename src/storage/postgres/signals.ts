import { createHash, randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import type { SignalTopic, StoreSignals } from '../store.ts';
import { quoteIdent } from './store.ts';

/** At most one NOTIFY per topic this often: a hint needs no more, and a burst of writes costs one round trip. */
const SEND_INTERVAL_MS = 10;
/** Waits before listening again after the connection was lost, the last repeated. */
const RECONNECT_DELAYS_MS = [100, 1000, 5000];


/**
 * Signals between the processes sharing a PostgreSQL schema, over LISTEN/NOTIFY
 * on one channel named after the schema (a hash of it: a channel name has at
 * most 63 bytes, as a schema name may have on its own). A signal is a hint (`<topic> <sender>`),
 * sent after the write it announces committed; a process ignores its own. The
 * listening connection is opened on the first `listen` and opened again when
 * lost, after which every topic's handlers run once (a signal may have been missed).
 */
export function createPostgresSignals(pool: pg.Pool, connection: pg.ClientConfig, schema: string): StoreSignals {
  const channel = `portcullis.${createHash('sha256').update(schema).digest('hex').slice(0, 16)}`;
  const self = randomUUID();
  const handlers = new Map<string, Array<() => void>>();
  /** Topics whose NOTIFY is under way; true when another was asked for meanwhile. */
  const sending = new Map<SignalTopic, boolean>();
  let listener: pg.Client | null = null;
  let connecting = false;
  let failures = 0;
  let closed = false;
  let retryTimer: NodeJS.Timeout | undefined;

  async function notify(topic: SignalTopic): Promise<void> {
    await pool.query('SELECT pg_notify($1, $2)', [channel, `${topic} ${self}`]).catch(() => undefined);
    await sleep(SEND_INTERVAL_MS, undefined, { ref: false });
    const again = sending.get(topic) === true;
    sending.delete(topic);
    if (again && !closed) send(topic);
  }

  function send(topic: SignalTopic): void {
    if (closed) return;
    if (sending.has(topic)) {
      sending.set(topic, true);
      return;
    }
    sending.set(topic, false);
    void notify(topic);
  }

  const runAll = (): void => {
    for (const list of handlers.values()) for (const handler of list) handler();
  };

  async function listen(): Promise<void> {
    if (closed || listener || connecting) return;
    connecting = true;
    // keepAlive: a half-open connection would otherwise never end, and signals stop unnoticed.
    const client = new pg.Client({ ...connection, keepAlive: true });
    // A lost connection surfaces as 'error' then 'end'; unheard, 'error' would crash the process.
    client.on('error', () => undefined);
    client.on('notification', (n) => {
      const [topic, from] = (n.payload ?? '').split(' ');
      if (n.channel !== channel || from === self) return;
      for (const handler of handlers.get(topic ?? '') ?? []) handler();
    });
    client.on('end', () => {
      if (listener !== client) return;
      listener = null;
      retryLater();
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${quoteIdent(channel)}`);
      if (closed) {
        await client.end().catch(() => undefined);
        return;
      }
      const missedSome = failures > 0;
      listener = client;
      failures = 0;
      if (missedSome) runAll();
    } catch {
      await client.end().catch(() => undefined);
      retryLater();
    } finally {
      connecting = false;
    }
  }

  function retryLater(): void {
    if (closed) return;
    const delay = RECONNECT_DELAYS_MS[Math.min(failures, RECONNECT_DELAYS_MS.length - 1)]!;
    failures++;
    retryTimer = setTimeout(() => void listen(), delay);
    retryTimer.unref();
  }

  return {
    send,
    listen(topic, handler) {
      handlers.set(topic, [...(handlers.get(topic) ?? []), handler]);
      void listen();
    },
    async close() {
      closed = true;
      clearTimeout(retryTimer);
      const client = listener;
      listener = null;
      await client?.end().catch(() => undefined);
    },
  };
}
