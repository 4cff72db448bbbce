import { emissionIntervalUs } from '../core/gcra.ts';
import type { Metrics } from '../observe/metrics.ts';
import type { RateLimits } from '../ratelimit/rateLimits.ts';
import { sourceIdentity } from '../ratelimit/rateLimits.ts';
import type { EventRecord, SourceStore } from '../storage/store.ts';

/** How long a throttled source's job waits when the limiter store is down and its policy fails closed. */
export const THROTTLE_STORE_DOWN_DELAY_MS = 1000;

/**
 * Throttle mode of a source's rate limit, for providers that never retry (a
 * 429 would lose the delivery): every delivery is stored and acknowledged, and
 * its processing is slowed to the policy's rate instead. Before a job runs, the
 * worker takes one GCRA step for the event's source; over the limit, the job
 * is postponed (not failed, no attempt counted) until the policy allows it.
 */
export interface SourceThrottle {
  /** Milliseconds to hold this event's processing back; 0 to run it now. */
  delayMs(event: EventRecord): Promise<number>;
}

export function createSourceThrottle(sources: SourceStore, rateLimits: RateLimits, metrics: Metrics, clock: () => Date): SourceThrottle {
  // Per source, the next free slot this process has handed a postponed job. Held-back jobs
  // are spread at the policy's rate instead of all falling due at the same instant, when
  // only the burst would pass and the rest be claimed and postponed again, round after round.
  const nextSlotMs = new Map<string, number>();
  return {
    async delayMs(event) {
      // No policies configured: no source can name one, so no lookup per job.
      if (rateLimits.policies.size === 0) return 0;
      const source = await sources.find(event.sourceId);
      if (!source || source.rateLimitMode !== 'throttle') return 0;
      const policy = rateLimits.forSource(source);
      if (!policy) return 0;
      // As a write: with the limiter store down, the policy's onStoreError decides (default closed: wait).
      const checked = rateLimits.check(policy, sourceIdentity(source.id), true);
      const outcome = checked instanceof Promise ? await checked : checked;
      if (outcome.kind === 'unavailable') return outcome.failClosed ? THROTTLE_STORE_DOWN_DELAY_MS : 0;
      if (outcome.decision.allowed) return 0;
      metrics.webhooksRateLimited.inc({ source: source.id, mode: 'throttle' });
      const now = clock().getTime();
      // Whole milliseconds, rounded up: a job must never fall due a fraction before its slot.
      const intervalMs = Math.ceil(emissionIntervalUs(policy) / 1000);
      const at = Math.max(now + outcome.decision.retryAfterSeconds * 1000, nextSlotMs.get(source.id) ?? 0);
      nextSlotMs.set(source.id, at + intervalMs);
      return at - now;
    },
  };
}
