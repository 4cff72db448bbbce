/**
 * Rate-limit maths: the Generic Cell Rate Algorithm, an exact token bucket kept
 * as one number per identity — the theoretical arrival time (TAT) of the next
 * request. A policy lets `burst` requests through at once and then `limit` per
 * `window`; an idle identity is back to its full burst one window after its last
 * request (when burst = limit).
 *
 * All times are integer microseconds so the same arithmetic is exact in
 * JavaScript and in Redis's Lua (doubles: integers up to 2^53 are exact). The
 * emission interval is rounded up, so rounding can only make a policy stricter.
 */

export interface RatePolicy {
  name: string;
  /** Requests per window. */
  limit: number;
  windowSeconds: number;
  /** Requests allowed at once; defaults to `limit`. */
  burst: number;
}

/** Microseconds between two requests at the sustained rate. */
export function emissionIntervalUs(policy: RatePolicy): number {
  return Math.ceil((policy.windowSeconds * 1_000_000) / policy.limit);
}

/** What the store returns for one atomic step: was it allowed, and the TAT it left. */
export interface GcraStep {
  allowed: boolean;
  /** The identity's TAT after this step (unchanged when refused), in µs. */
  tatUs: number;
}

/**
 * One atomic step: given the stored TAT (or null for an unknown identity),
 * decide and return the new TAT. The memory limiter calls this directly; the
 * Redis limiter runs the same lines in Lua (src/ratelimit/redis.ts).
 */
export function gcraStep(storedTatUs: number | null, nowUs: number, intervalUs: number, burst: number, cost: number): GcraStep {
  const tat = storedTatUs === null || storedTatUs < nowUs ? nowUs : storedTatUs;
  const next = tat + cost * intervalUs;
  if (next - nowUs > burst * intervalUs) return { allowed: false, tatUs: tat };
  return { allowed: true, tatUs: next };
}

export interface RateDecision {
  policy: RatePolicy;
  allowed: boolean;
  /** Requests still allowed right now after this one. */
  remaining: number;
  /** Seconds until the identity is back to its full burst. */
  resetSeconds: number;
  /** Seconds until a request would be allowed again (0 when allowed). */
  retryAfterSeconds: number;
}

/** The caller-facing figures of a step, for headers. */
export function describeStep(policy: RatePolicy, step: GcraStep, nowUs: number, cost: number): RateDecision {
  const interval = emissionIntervalUs(policy);
  const ahead = Math.max(0, step.tatUs - nowUs);
  const tolerance = policy.burst * interval;
  const remaining = Math.max(0, Math.floor((tolerance - ahead) / interval));
  // A refused request would have been allowed once its cost fits under the tolerance again.
  const wait = step.allowed ? 0 : ahead + cost * interval - tolerance;
  return {
    policy,
    allowed: step.allowed,
    remaining,
    resetSeconds: Math.ceil(ahead / 1_000_000),
    retryAfterSeconds: step.allowed ? 0 : Math.max(1, Math.ceil(wait / 1_000_000)),
  };
}
