/**
 * Wakes long-polling readers when something new may be there to read. It is a
 * hint only: readers look again after their own timeout too (events written by
 * another process, leases running out), so a missed wake-up only costs latency.
 */
export interface Wakeup {
  /** Wakes this process's waiters, and runs `onNotify` (which tells other processes). */
  notify(): void;
  /** Wakes this process's waiters only: the news came from another process. */
  wake(): void;
  /** Resolves on the next notify, after `ms`, when `signal` aborts, or at once once closed. */
  wait(ms: number, signal?: AbortSignal): Promise<void>;
  /** Releases every waiter, now and later (the server is shutting down). */
  close(): void;
  readonly closed: boolean;
}

/** `onNotify`: what else a notify does (tell the other processes sharing the store; wake related waiters). */
export function createWakeup(onNotify?: () => void): Wakeup {
  const waiters = new Set<() => void>();
  let closed = false;
  const wakeAll = (): void => {
    for (const wake of [...waiters]) wake();
  };
  return {
    notify() {
      wakeAll();
      onNotify?.();
    },
    wake: wakeAll,
    wait(ms, signal) {
      if (closed || signal?.aborted) return Promise.resolve();
      return new Promise((resolve) => {
        const done = (): void => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', done);
          waiters.delete(done);
          resolve();
        };
        const timer = setTimeout(done, ms);
        signal?.addEventListener('abort', done, { once: true });
        waiters.add(done);
      });
    },
    close() {
      closed = true;
      wakeAll();
    },
    get closed() {
      return closed;
    },
  };
}
