/**
 * Exponential backoff with full jitter (AWS's "Exponential Backoff and
 * Jitter"): the delay before retry n is uniform in [0, min(max, base * 2^(n-1))].
 * Full jitter spreads a burst of failures out instead of retrying them in step.
 */
export function fullJitterDelayMs(attempt: number, baseMs: number, maxMs: number, random: () => number = Math.random): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.floor(random() * ceiling);
}
