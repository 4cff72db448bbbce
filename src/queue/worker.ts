import type { Logger } from 'pino';
import { startClaimLoop } from './claimLoop.ts';
import { fullJitterDelayMs } from '../core/backoff.ts';
import type { Metrics } from '../observe/metrics.ts';
import type { RateLimits } from '../ratelimit/rateLimits.ts';
import type { ClaimedJob, EventRecord, Store } from '../storage/store.ts';
import { createSourceThrottle } from './throttle.ts';
import type { Wakeup } from './wakeup.ts';

/**
 * One step of processing an event. Steps run in order; a step that throws or
 * outlives its timeout fails the attempt. Processing is at-least-once, so a step
 * must be idempotent (every job carries its event's id for that).
 */
export interface ProcessStep {
  name: string;
  run(event: EventRecord, signal: AbortSignal, job: { id: string }): Promise<void>;
}

export interface WorkerSettings {
  maxAttempts: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
  leaseMs: number;
  stepTimeoutMs: number;
  concurrency: number;
  pollMs: number;
}

export interface Worker {
  stop(): Promise<void>;
}

/**
 * Claims due jobs with a lease, runs the processing steps, and finishes each
 * job: done, retried after exponential backoff with full jitter, or
 * dead-lettered with its last error after `maxAttempts`. A worker that dies
 * leaves leases that run out; another worker then takes the jobs over. With
 * `rateLimits`, jobs of a source in throttle mode are postponed while the
 * source is over its policy (src/queue/throttle.ts).
 */
export function startWorker(
  store: Store,
  steps: readonly ProcessStep[],
  settings: WorkerSettings,
  clock: () => Date,
  log: Logger,
  metrics: Metrics,
  rateLimits?: RateLimits,
  /** Notified when jobs are queued: an idle worker claims at once instead of at its next poll. */
  wakeup?: Wakeup,
): Worker {
  const throttle = rateLimits ? createSourceThrottle(store.sources, rateLimits, metrics, clock) : null;

  async function runSteps(event: EventRecord, job: ClaimedJob): Promise<void> {
    for (const step of steps) {
      const signal = AbortSignal.timeout(settings.stepTimeoutMs);
      await Promise.race([
        step.run(event, signal, job),
        new Promise<never>((_, reject) => signal.addEventListener('abort', () => reject(new Error(`step ${step.name} timed out after ${settings.stepTimeoutMs} ms`)), { once: true })),
      ]);
    }
  }

  /** Gives a held-back job back, due after `delayMs`, with no attempt counted. */
  async function postpone(job: ClaimedJob, delayMs: number): Promise<void> {
    const now = clock();
    try {
      if (!(await store.jobs.postpone(job, new Date(now.getTime() + delayMs), now))) log.warn({ jobId: job.id }, 'job lease lost before it was postponed; another worker has it');
    } catch (err) {
      // The lease runs out and the job is claimed again (that claim then counts an attempt).
      log.warn({ jobId: job.id, err: (err as Error).message }, 'job not postponed');
    }
  }

  async function work(job: ClaimedJob): Promise<void> {
    const started = performance.now();
    let event: EventRecord | null = null;
    let outcome: 'done' | 'retry' | 'dead' = 'done';
    let error = '';
    try {
      event = await store.events.get(job.eventId);
      if (!event) throw new Error(`event ${job.eventId} no longer exists`);
      const delayMs = throttle ? await throttle.delayMs(event) : 0;
      if (delayMs > 0) {
        await postpone(job, delayMs);
        return;
      }
      await runSteps(event, job);
    } catch (err) {
      error = (err as Error).message || String(err);
      outcome = job.attempt >= settings.maxAttempts ? 'dead' : 'retry';
    }
    const now = clock();
    const result =
      outcome === 'done'
        ? ({ outcome } as const)
        : outcome === 'dead'
          ? ({ outcome, error } as const)
          : ({ outcome, error, runAt: new Date(now.getTime() + fullJitterDelayMs(job.attempt, settings.backoffBaseMs, settings.backoffMaxMs)) } as const);
    try {
      const kept = await store.jobs.finish(job, result, now);
      if (!kept) log.warn({ jobId: job.id }, 'job lease lost before it finished; another worker has it');
      // Per event only when this outcome was recorded: with the lease lost, the worker holding it counts its own.
      if (kept) {
        const labels = { source: event?.sourceId ?? 'unknown', type: event?.type ?? 'unknown' };
        if (outcome === 'done') metrics.webhooksProcessed.inc(labels);
        else metrics.webhooksFailed.inc(labels);
        if (outcome === 'dead') metrics.webhooksDead.inc(labels);
      }
      metrics.jobsFinished.inc({ outcome });
      metrics.jobDuration.observe({ outcome }, (performance.now() - started) / 1000);
      if (outcome === 'dead') log.warn({ jobId: job.id, eventId: job.eventId, attempts: job.attempt, error }, 'job dead-lettered');
    } catch (err) {
      // The lease runs out and the job is retried: at-least-once.
      log.warn({ jobId: job.id, err: (err as Error).message }, 'job outcome not saved');
    }
  }

  return startClaimLoop({
    concurrency: settings.concurrency,
    pollMs: settings.pollMs,
    claim: (free) => store.jobs.claim({ limit: free, leaseMs: settings.leaseMs, now: clock() }),
    run: work,
    onClaimError: (err) => log.warn({ err: err.message }, 'claiming jobs failed'),
    ...(wakeup ? { wakeup } : {}),
  });
}
