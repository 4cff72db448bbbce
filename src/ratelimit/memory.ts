import { emissionIntervalUs, gcraStep } from '../core/gcra.ts';
import type { Limiter } from './limiter.ts';

export const MEMORY_LIMITER_MAX_ENTRIES = 200_000;
const SWEEP_INTERVAL_MS = 10_000;

/**
 * Rate-limit state in this process: one TAT per identity. A step is a plain
 * read-modify-write with no await in between, so it is atomic in Node's single
 * thread and counts are exact. An entry whose TAT has passed carries no
 * information (the identity is back to its full burst), so a periodic sweep
 * drops it: memory follows the number of identities active within a window,
 * capped at `maxEntries` (beyond it the oldest entries are forgotten).
 */
export function createMemoryLimiter(maxEntries = MEMORY_LIMITER_MAX_ENTRIES, nowUs: () => number = () => Date.now() * 1000): Limiter {
  const tats = new Map<string, number>();
  const sweep = (now: number): void => {
    for (const [key, tat] of tats) if (tat <= now) tats.delete(key);
  };
  const timer = setInterval(() => sweep(nowUs()), SWEEP_INTERVAL_MS);
  timer.unref();

  return {
    kind: 'memory',
    take(key, policy, now, cost) {
      const step = gcraStep(tats.get(key) ?? null, now, emissionIntervalUs(policy), policy.burst, cost);
      if (step.allowed) {
        if (!tats.has(key) && tats.size >= maxEntries) {
          sweep(now);
          if (tats.size >= maxEntries) tats.delete(tats.keys().next().value!);
        }
        tats.set(key, step.tatUs);
      }
      return step;
    },
    entries() {
      sweep(nowUs());
      return tats.size;
    },
    ready: async () => true,
    async close() {
      clearInterval(timer);
      tats.clear();
    },
  };
}
