import type { GcraStep, RatePolicy } from '../core/gcra.ts';

/**
 * Where rate-limit state lives: in this process (the embedded default) or in
 * Redis, shared by every process. `take` is one atomic GCRA step.
 */
export interface Limiter {
  readonly kind: 'memory' | 'redis';
  /** Synchronous in memory; a promise when the state is remote. */
  take(key: string, policy: RatePolicy, nowUs: number, cost: number): GcraStep | Promise<GcraStep>;
  /** Identities this process holds state for (memory only: Redis expires its own), after dropping stale ones. */
  entries(): number | null;
  /** Waits up to `timeoutMs` for the store to be reachable; false if it is not yet. */
  ready(timeoutMs: number): Promise<boolean>;
  close(): Promise<void>;
}

/** The limiter's store could not answer in time, or at all. */
export class LimiterUnavailable extends Error {
  constructor(cause: string) {
    super(`rate-limit store unavailable: ${cause}`);
    this.name = 'LimiterUnavailable';
  }
}
