/** Jitter applied to each scheduled delay: ±20 %, so deliveries failing together do not retry in step. */
const JITTER = 0.2;

/**
 * Milliseconds to wait after attempt `roundAttempt` (from 1) failed, or null
 * when the schedule has no attempt left. `schedule[i]` is the delay before
 * attempt i + 1 (the first is usually 0: at once).
 */
export function nextRetryDelayMs(schedule: readonly number[], roundAttempt: number, random: () => number = Math.random): number | null {
  const seconds = schedule[roundAttempt];
  if (seconds === undefined) return null;
  return Math.round(seconds * 1000 * (1 - JITTER + 2 * JITTER * random()));
}

/** A `Retry-After` header (seconds or an HTTP date) in milliseconds from `now`, capped; null when absent or unreadable. */
export function retryAfterMs(header: string | string[] | undefined, now: Date, capMs: number): number | null {
  const value = Array.isArray(header) ? header[0] : header;
  if (value === undefined || value.trim() === '') return null;
  const trimmed = value.trim();
  let ms: number;
  if (/^\d+$/.test(trimmed)) ms = Number(trimmed) * 1000;
  else {
    const at = Date.parse(trimmed);
    if (Number.isNaN(at)) return null;
    ms = at - now.getTime();
  }
  return Math.min(Math.max(ms, 0), capMs);
}
