import type { Logger } from 'pino';
import type { RetentionConfig } from '../config/schema.ts';
import type { Metrics } from '../observe/metrics.ts';
import type { EventStore } from '../storage/store.ts';

export const DAY_MS = 86_400_000;

export interface RetentionSweeper {
  /** Sweeps now (or joins the sweep already running): every batch until none is left. */
  sweep(): Promise<{ bodies: number; dedup: number }>;
  /** Stops the timer and waits for a running sweep to end after its current batch. */
  stop(): Promise<void>;
}

/**
 * Retention, every `sweepIntervalMs`: removes the raw body of events received
 * more than `bodyDays` days ago that are no longer pending (processed or dead;
 * the rest of the event and its history stay), and deletes dedup records whose
 * window has passed (they no longer decide anything). Work goes in batches of
 * `batchSize` rows, one short transaction each, yielding between batches, so a
 * sweep never holds a lock long enough to stall ingest or the workers.
 */
export function startRetention(events: EventStore, settings: RetentionConfig, clock: () => Date, log: Logger, metrics: Metrics): RetentionSweeper {
  let stopped = false;
  let running: Promise<{ bodies: number; dedup: number }> | null = null;

  async function inBatches(step: (limit: number) => Promise<number>, counted: { inc(n: number): void }): Promise<number> {
    let total = 0;
    while (!stopped) {
      const n = await step(settings.batchSize);
      total += n;
      counted.inc(n);
      if (n < settings.batchSize) break;
      // Requests and workers get the store between two batches.
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    return total;
  }

  async function once(): Promise<{ bodies: number; dedup: number }> {
    const now = clock();
    const before = new Date(now.getTime() - settings.bodyDays * DAY_MS);
    const bodies = settings.bodyDays > 0 ? await inBatches((limit) => events.deleteBodiesBefore(before, limit), metrics.retentionBodiesDeleted) : 0;
    const dedup = await inBatches((limit) => events.deleteExpiredDedup(now, limit), metrics.retentionDedupDeleted);
    if (bodies > 0 || dedup > 0) log.info({ bodiesDeleted: bodies, dedupDeleted: dedup, bodyDays: settings.bodyDays }, 'retention sweep');
    return { bodies, dedup };
  }

  function sweep(): Promise<{ bodies: number; dedup: number }> {
    running ??= once().finally(() => {
      running = null;
    });
    return running;
  }

  const timer = setInterval(() => {
    sweep().catch((err: Error) => log.warn({ err: err.message }, 'retention sweep failed; the next one picks up'));
  }, settings.sweepIntervalMs);
  timer.unref();

  return {
    sweep,
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running?.catch(() => undefined);
    },
  };
}
