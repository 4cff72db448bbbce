import { randomUUID } from 'node:crypto';
import { monthDays, nextMonthStart, utcDay, utcMonth } from '../core/periods.ts';
import type { Logger } from 'pino';
import type { Metrics } from '../observe/metrics.ts';
import type { ApiKeyRecord, UsageDelta, UsageStore } from '../storage/store.ts';

/** How stale a key's month total may get before it is read again (other processes' usage shows within this). */
export const QUOTA_REFRESH_MS = 1000;

export interface Admission {
  allowed: boolean;
  limit: number;
  /** Units used this month including this request (excluding it when refused). */
  used: number;
  /** At or above the soft limit: the caller gets a warning. */
  warn: boolean;
  resetsAt: Date;
}

export interface Meter {
  /**
   * Counts a request of `units` for the key on the route. With a quota, refuses
   * it (and counts nothing) when it would take the month past the hard limit;
   * without one returns null.
   */
  admit(key: ApiKeyRecord, route: string, units: number): Admission | null | Promise<Admission | null>;
  /** Writes the counts gathered so far to the store. */
  flush(): Promise<void>;
  /** Deltas not yet in the store. */
  pendingDeltas(): number;
}

interface MonthState {
  month: string;
  /** The store's total when read. */
  stored: number;
  /** Units admitted here since that read (not in `stored`). */
  local: number;
  readAt: number;
}

/**
 * The metering ledger's writer and the quota check. Counts gather in memory and
 * are written in one transaction per flush (so metering costs no store write
 * per request); each flush has an id the store records with it, so a flush
 * retried after an unknown outcome never counts twice. Quotas are exact within
 * one process; across processes each sees the others' usage within about
 * QUOTA_REFRESH_MS plus the flush interval.
 */
export function createMeter(store: UsageStore, clock: () => Date, metrics: Pick<Metrics, 'quotaWarnings' | 'quotaExceeded'>, log: Logger): Meter {
  let pending = new Map<string, UsageDelta>();
  // A batch whose write failed: retried as is, with the same id, before any newer one.
  let unwritten: { id: string; deltas: UsageDelta[] } | null = null;
  // Writes and month reads run one at a time, so a read never races a write of the counts it adds to.
  let queue: Promise<unknown> = Promise.resolve();
  const serially = <T>(fn: () => Promise<T>): Promise<T> => {
    const run = queue.then(fn);
    queue = run.catch(() => undefined);
    return run;
  };
  const months = new Map<string, MonthState>();
  const reading = new Map<string, Promise<MonthState>>();

  function count(keyId: string, route: string, units: number, now: Date): void {
    const day = utcDay(now);
    const id = `${keyId}\n${day}\n${route}`;
    const delta = pending.get(id);
    if (delta) {
      delta.requests += 1;
      delta.units += units;
    } else pending.set(id, { keyId, route, day, requests: 1, units });
  }

  function notStored(keyId: string, month: string): number {
    let units = 0;
    for (const d of [...pending.values(), ...(unwritten?.deltas ?? [])]) if (d.keyId === keyId && d.day.startsWith(month)) units += d.units;
    return units;
  }

  async function writeOnce(): Promise<void> {
    if (!unwritten) {
      if (pending.size === 0) return;
      unwritten = { id: randomUUID(), deltas: [...pending.values()] };
      pending = new Map();
    }
    await store.record(unwritten.id, unwritten.deltas, clock());
    unwritten = null;
  }

  const flush = (): Promise<void> => serially(writeOnce);

  function readMonth(keyId: string, now: Date): Promise<MonthState> {
    return serially(async () => {
      // Write first, so the total read includes everything this process counted.
      await writeOnce().catch(() => undefined);
      const { first, last } = monthDays(now);
      const stored = await store.units(keyId, first, last);
      const month = utcMonth(now);
      const state = { month, stored, local: notStored(keyId, month), readAt: clock().getTime() };
      months.set(keyId, state);
      return state;
    });
  }

  function decide(key: ApiKeyRecord & { quota: NonNullable<ApiKeyRecord['quota']> }, route: string, units: number, now: Date, state: MonthState): Admission {
    const before = state.stored + state.local;
    const resetsAt = nextMonthStart(now);
    const { limit, softLimit } = key.quota;
    if (before + units > limit) {
      metrics.quotaExceeded.inc();
      return { allowed: false, limit, used: before, warn: softLimit !== null, resetsAt };
    }
    state.local += units;
    count(key.id, route, units, now);
    const used = before + units;
    const warn = softLimit !== null && used >= softLimit;
    if (warn) metrics.quotaWarnings.inc();
    // Logged once, by the request that crosses it.
    if (warn && before < softLimit!) log.warn({ keyId: key.id, used, limit, softLimit, route }, 'key passed its soft quota');
    return { allowed: true, limit, used, warn, resetsAt };
  }

  return {
    admit(key, route, units) {
      const now = clock();
      if (!key.quota) {
        count(key.id, route, units, now);
        return null;
      }
      const quotaKey = { ...key, quota: key.quota };
      const state = months.get(key.id);
      if (state && state.month === utcMonth(now) && now.getTime() - state.readAt < QUOTA_REFRESH_MS) return decide(quotaKey, route, units, now, state);
      let read = reading.get(key.id);
      if (!read) {
        read = readMonth(key.id, now).finally(() => reading.delete(key.id));
        reading.set(key.id, read);
      }
      return read.then(
        // Re-read the map: the decision must use the state every concurrent request shares.
        () => decide(quotaKey, route, units, now, months.get(key.id)!),
        (err: unknown) => {
          // The store is down: a total read in this month, however old, is better than refusing.
          const stale = months.get(key.id);
          if (stale && stale.month === utcMonth(now)) return decide(quotaKey, route, units, now, stale);
          throw err;
        },
      );
    },
    flush,
    pendingDeltas: () => pending.size + (unwritten?.deltas.length ?? 0),
  };
}
