import type { Wakeup } from './wakeup.ts';
import { createWakeup } from './wakeup.ts';

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

/**
 * The loop workers and dispatchers share: claim as many items as there are free
 * slots and run them; ask again at once after a full batch or when enough slots
 * have freed, else after `pollMs` or a wake-up.
 */
export function startClaimLoop<T>(o: ClaimLoopOptions<T>): ClaimLoop {
  const wakeup = o.wakeup ?? createWakeup();
  const inFlight = new Set<Promise<void>>();
  let stopped = false;
  let idle: AbortController | null = null;
  const kick = (): void => idle?.abort();
  // A finished item asks for more only once a quarter of the slots are free (or none is busy):
  // under load, claims then come in batches instead of one transaction per freed slot.
  const minBatch = Math.max(1, Math.floor(o.concurrency / 4));

  const loop = (async () => {
    while (!stopped) {
      const free = o.concurrency - inFlight.size;
      let claimed: T[] = [];
      if (free > 0) {
        try {
          claimed = await o.claim(free);
        } catch (err) {
          o.onClaimError(err as Error);
        }
      }
      for (const item of claimed) {
        const p = o.run(item).finally(() => {
          inFlight.delete(p);
          if (inFlight.size === 0 || o.concurrency - inFlight.size >= minBatch) kick();
        });
        inFlight.add(p);
      }
      if (free > 0 && claimed.length === free) continue;
      idle = new AbortController();
      await wakeup.wait(o.pollMs, idle.signal);
      idle = null;
    }
  })();

  return {
    async stop() {
      stopped = true;
      kick();
      await loop;
      await Promise.allSettled([...inFlight]);
    },
  };
}
