/**
 * Group commit, shared by both adapters: inbound events (and, on SQLite, job
 * outcomes, for the same reason).
 *
 * Why: an inbound delivery is acknowledged only once it is durable, and a durable
 * commit costs a disk flush (SQLite: an fsync per COMMIT in WAL with
 * `synchronous=FULL`) or, on PostgreSQL, a transaction's round trips on a pooled
 * connection. One transaction per request makes that cost the ceiling of inbound
 * throughput. Instead, the deliveries of concurrent requests are queued and
 * committed together: whatever arrived during one turn of the event loop goes in
 * one transaction on the next (at most INGEST_BATCH_MAX deliveries or
 * INGEST_BATCH_MAX_BYTES of bodies; more go in the next one), and while
 * `maxInFlight` commits are running, new deliveries gather for the one after.
 * A lone request waits one turn, nothing more: there is no timer.
 *
 * Invariants (the adapters' `commit` keeps the first two):
 * - Items are written in arrival order in one transaction, and a later item sees
 *   what an earlier one wrote, so dedup stays exact inside a batch.
 * - `commit` returns only after its COMMIT did; each caller's promise settles after
 *   that, so no delivery is acknowledged before it is durable.
 * - A commit that throws rejects every caller in the batch (their providers get 503
 *   and retry). An item `commit` reports as failed is rejected alone.
 */

/** The most deliveries one commit carries; more waiting go in the next commit. */
export const INGEST_BATCH_MAX = 256;
/** A batch is committed at once when its items weigh this much (bodies: a few large deliveries need no company). */
export const INGEST_BATCH_MAX_BYTES = 8 * 1024 * 1024;

export type BatchOutcome<O> = { ok: true; value: O } | { ok: false; error: unknown };

export interface GroupCommit<I, O> {
  /** Resolves with the item's outcome once the transaction holding it is committed. */
  add(item: I): Promise<O>;
  /** Called after each commit with the number of items it carried (for the metrics). */
  onCommit(listener: (items: number) => void): void;
}

interface Waiting<I, O> {
  item: I;
  bytes: number;
  /** When it was added (ms), for `maxWaitMs`. */
  since: number;
  resolve(value: O): void;
  reject(reason: unknown): void;
}

export interface GroupCommitOptions<I, O> {
  /** Writes the items in order in one transaction; one outcome per item, in order. */
  commit(items: I[]): BatchOutcome<O>[] | Promise<BatchOutcome<O>[]>;
  /** An item's size in bytes, for INGEST_BATCH_MAX_BYTES. */
  weigh(item: I): number;
  /**
   * Commits that may run at once. While that many are running, new items wait and
   * go together in the next one as soon as one finishes. Irrelevant for a
   * synchronous `commit` (SQLite), whose commit ends before anything else runs.
   */
  maxInFlight: number;
  /**
   * How long an item may wait for a commit to take it (commits that hang: a server
   * that stopped answering). Past it, the item is rejected with `tooLong()`,
   * unwritten; items already in a commit wait for its outcome. None by default.
   */
  maxWaitMs?: number;
  tooLong?: () => unknown;
}

export function createGroupCommit<I, O>(options: GroupCommitOptions<I, O>): GroupCommit<I, O> {
  const { commit, weigh, maxInFlight, maxWaitMs } = options;
  let queue: Waiting<I, O>[] = [];
  let expiry: NodeJS.Timeout | null = null;
  let queuedBytes = 0;
  let inFlight = 0;
  let scheduled = false;
  const listeners: ((items: number) => void)[] = [];

  /** The oldest items, up to the caps. */
  const take = (): Waiting<I, O>[] => {
    let n = 0;
    let bytes = 0;
    while (n < queue.length && n < INGEST_BATCH_MAX && (n === 0 || bytes + queue[n]!.bytes <= INGEST_BATCH_MAX_BYTES)) bytes += queue[n++]!.bytes;
    const batch = n === queue.length ? queue : queue.slice(0, n);
    queue = n === queue.length ? [] : queue.slice(n);
    queuedBytes -= bytes;
    return batch;
  };

  const commitBatch = async (batch: Waiting<I, O>[]): Promise<void> => {
    let outcomes: BatchOutcome<O>[];
    try {
      outcomes = await commit(batch.map((w) => w.item));
    } catch (err) {
      for (const w of batch) w.reject(err);
      return;
    }
    batch.forEach((w, i) => {
      const o = outcomes[i]!;
      if (o.ok) w.resolve(o.value);
      else w.reject(o.error);
    });
    for (const listener of listeners) {
      try {
        listener(batch.length);
      } catch {
        // Metrics only: a failing listener must not reach the event loop.
      }
    }
  };

  const flush = (): void => {
    while (inFlight < maxInFlight && queue.length > 0) {
      const batch = take();
      inFlight++;
      void commitBatch(batch).finally(() => {
        inFlight--;
        // What arrived meanwhile goes in the next commit, at once.
        flush();
      });
    }
  };

  /** Rejects the items that waited longer than `maxWaitMs`, then watches the oldest left. */
  const expire = (): void => {
    expiry = null;
    const now = Date.now();
    const expired = queue.filter((w) => now - w.since >= maxWaitMs!);
    if (expired.length > 0) {
      queue = queue.filter((w) => now - w.since < maxWaitMs!);
      for (const w of expired) {
        queuedBytes -= w.bytes;
        w.reject(options.tooLong?.() ?? new Error(`not committed within ${maxWaitMs} ms`));
      }
    }
    watch();
  };
  const watch = (): void => {
    if (maxWaitMs === undefined || expiry !== null || queue.length === 0) return;
    expiry = setTimeout(expire, Math.max(0, queue[0]!.since + maxWaitMs - Date.now()));
    expiry.unref();
  };

  return {
    add(item) {
      return new Promise<O>((resolve, reject) => {
        const bytes = weigh(item);
        queue.push({ item, bytes, since: Date.now(), resolve, reject });
        queuedBytes += bytes;
        watch();
        if (queue.length >= INGEST_BATCH_MAX || queuedBytes >= INGEST_BATCH_MAX_BYTES) flush();
        else if (!scheduled) {
          scheduled = true;
          setImmediate(() => {
            scheduled = false;
            flush();
          });
        }
      });
    },
    onCommit(listener) {
      listeners.push(listener);
    },
  };
}
