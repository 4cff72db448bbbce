import type { Wakeup } from './wakeup.ts';
import { createWakeup } from './wakeup.ts';

/** The reason a kicked wait ends with: given, so an abort builds no DOMException (a stack trace per finished item). */
const KICKED = Symbol('kicked');

export interface ClaimLoopOptions<T> {
  /** Items run at once at most. */
  concurrency: number;
  /** How long an idle loop waits before it asks again (unless woken). */
  pollMs: number;
  /** Leases up to `free` items. */
  claim(free: number): Promise<T[]>;
  /** Works on one item; must not throw. */
  run(item: T): Promise<void>;
  onClaimError(err: Error): void;
  /** Wakes an idle loop early: new work was queued in this process. */
  wakeup?: Wakeup;
}

export interface ClaimLoop {
  /** Stops claiming and waits for the items in flight. */
  stop(): Promise<void>;
}

/** Claims under way at once: the next is asked for while one is still on its way (a round trip to PostgreSQL). */
const MAX_CLAIMS_IN_FLIGHT = 2;

/**
 * The loop workers and dispatchers share: claim as many items as there are free
 * slots and run them; ask again at once after a full batch or when enough slots
 * have freed, else after `pollMs` or a wake-up. A second claim may start while
 * the first is under way, so the slots do not sit empty during a claim's round trip.
 */
export function startClaimLoop<T>(o: ClaimLoopOptions<T>): ClaimLoop {
  const wakeup = o.wakeup ?? createWakeup();
  const inFlight = new Set<Promise<void>>();
  const claims = new Set<Promise<void>>();
  /** Slots the claims under way may fill. */
  let reserved = 0;
  let stopped = false;
  /** A wake-up came while claims were under way: their rows may predate the news, so claim again after them. */
  let wokenDuringClaim = false;
  let idle: AbortController | null = null;
  const kick = (): void => idle?.abort(KICKED);
  // A finished item asks for more only once half the slots are free (or none is busy): under
  // load, claims then come in batches instead of one transaction per freed slot (a quarter was
  // measured too: a claim's fixed cost then weighed more, for no fuller pipeline).
  const minBatch = Math.max(1, Math.floor(o.concurrency / 2));
  const free = (): number => o.concurrency - inFlight.size - reserved;

  function start(item: T): void {
    const p = o.run(item).finally(() => {
      inFlight.delete(p);
      if (inFlight.size === 0 || free() >= minBatch) kick();
    });
    inFlight.add(p);
  }

  async function claim(n: number): Promise<void> {
    reserved += n;
    let items: T[] = [];
    try {
      items = await o.claim(n);
    } catch (err) {
      o.onClaimError(err as Error);
    } finally {
      reserved -= n;
    }
    for (const item of items) start(item);
    // A full batch: there may be more. A short one waits for a wake-up, a freed slot or the poll.
    if (items.length === n || wokenDuringClaim) {
      wokenDuringClaim = false;
      kick();
    }
  }

  const loop = (async () => {
    while (!stopped) {
      const n = free();
      if (n > 0 && claims.size < MAX_CLAIMS_IN_FLIGHT) {
        const c = claim(n).finally(() => claims.delete(c));
        claims.add(c);
        continue;
      }
      idle = new AbortController();
      const waiting = idle;
      await wakeup.wait(o.pollMs, waiting.signal);
      idle = null;
      // Woken by news or the poll (not by a kick of our own) while a claim was on its way.
      if (claims.size > 0 && !waiting.signal.aborted) wokenDuringClaim = true;
    }
  })();

  return {
    async stop() {
      stopped = true;
      kick();
      await loop;
      await Promise.allSettled([...claims]);
      await Promise.allSettled([...inFlight]);
    },
  };
}
