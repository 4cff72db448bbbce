// Shared by the parent (load.ts) and the load generator process (loadgen.ts),
// which must not import the parent's process helpers.

export interface LoadOptions {
  url: string;
  headers: Record<string, string>;
  connections: number;
  /** Run for this long (ignored when `amount` is set). */
  durationS?: number;
  /** Send exactly this many requests, then stop. */
  amount?: number;
  /** A discarded run of this length first, so both sides are measured warm. */
  warmupS?: number;
  /** POST this body instead of a GET (same bytes every request, unless `githubSecret` is set). */
  body?: string;
  /**
   * Send every request as a fresh GitHub delivery: a new UUID in X-GitHub-Delivery
   * and in place of DELIVERY_PLACEHOLDER in `body`, signed with this secret
   * (X-Hub-Signature-256), so each one is verified and none is a duplicate.
   */
  githubSecret?: string;
}

/** Where a signed delivery's body gets its delivery id. */
export const DELIVERY_PLACEHOLDER = '{{delivery}}';

export interface LoadResult {
  durationS: number;
  /** 2xx responses. */
  ok: number;
  non2xx: number;
  errors: number;
  /** 2xx responses per second. */
  reqPerSec: number;
  /** Response times of the 2xx responses. */
  latencyMs: { mean: number; p50: number; p90: number; p99: number; max: number };
}

/** The line the load generator prints when the warm-up is over and the counted run starts. */
export const MEASURING = 'measuring';
