import type { KeyObject } from 'node:crypto';
import type { Logger } from 'pino';
import type { DeliveryConfig } from '../config/schema.ts';
import { nextRetryDelayMs, retryAfterMs } from '../core/retrySchedule.ts';
import { openSecret } from '../core/secretBox.ts';
import { openHeaders } from '../core/endpointHeaders.ts';
import { signingKey } from '../core/webhookSigning.ts';
import { emissionIntervalUs } from '../core/gcra.ts';
import type { Limiter } from '../ratelimit/limiter.ts';
import { createMemoryLimiter } from '../ratelimit/memory.ts';
import type { Metrics } from '../observe/metrics.ts';
import type { OutboundClient } from '../outbound/client.ts';
import type { ClaimedDelivery, DeliveryOutcome, EndpointRecord } from '../storage/deliveryStore.ts';
import type { Store } from '../storage/store.ts';
import { sendAttempt } from './attempt.ts';
import type { Router } from './router.ts';
import { startClaimLoop } from '../queue/claimLoop.ts';
import type { Wakeup } from '../queue/wakeup.ts';

export interface DispatcherOptions {
  store: Store;
  client: OutboundClient;
  settings: DeliveryConfig;
  /** Seconds before each attempt, unless the endpoint has its own. */
  retrySchedule: readonly number[];
  secretsKey: KeyObject;
  clock: () => Date;
  log: Logger;
  metrics: Metrics;
  /** Notified when deliveries are queued in this process, so an idle dispatcher starts at once. */
  wakeup: Wakeup;
  /** Reads endpoints (a short-lived list) and publishes the operational events (an endpoint disabled). */
  router: Router;
  /** Where endpoints' rate-limit state lives: with Redis, shared by every process. */
  limiter: Limiter;
}

export interface Dispatcher {
  stop(): Promise<void>;
}

/** The keys an attempt is signed with: the current secret's, and during a rotation's grace period the previous one's too. */
export function signingKeys(endpoint: EndpointRecord, keyOf: (sealed: string) => KeyObject, now: Date): KeyObject[] {
  const keys = [keyOf(endpoint.secretSealed)];
  if (endpoint.previousSecretSealed && endpoint.previousSecretExpiresAt && endpoint.previousSecretExpiresAt > now) keys.push(keyOf(endpoint.previousSecretSealed));
  return keys;
}

/**
 * Claims due deliveries with a lease and attempts them, a pool of
 * `concurrency` at once and at most `perEndpointConcurrency` per endpoint, so one
 * slow endpoint never holds the others up. Each attempt is signed afresh;
 * failures are retried on the schedule (with jitter, and no sooner than a
 * Retry-After asks), then dead-lettered. An endpoint answering 410, or failing
 * too long, is disabled and that is announced as a `portcullis.endpoint.disabled`
 * message.
 */
export function startDispatcher(o: DispatcherOptions): Dispatcher {
  const { store, settings, clock, log, metrics, wakeup } = o;
  const perEndpoint = new Map<string, number>();
  /** Endpoints' rate-limit state in this process, used while the limiter's store (Redis) does not answer. */
  const localLimiter = createMemoryLimiter(undefined, () => clock().getTime() * 1000);
  /** Signing keys by sealed secret (unique per sealing): an AES-GCM open per attempt would cost more than the HMAC. */
  const keys = new Map<string, KeyObject>();
  const keyOf = (endpointId: string) => (sealed: string): KeyObject => {
    let key = keys.get(sealed);
    if (key === undefined) {
      if (keys.size >= 10_000) keys.clear();
      key = signingKey(openSecret(o.secretsKey, sealed, endpointId));
      keys.set(sealed, key);
    }
    return key;
  };

  /** Each endpoint record's own headers, opened (the router keeps a record for a second or so). */
  const opened = new WeakMap<EndpointRecord, Record<string, string>>();
  const headersOf = (endpoint: EndpointRecord): Record<string, string> => {
    let headers = opened.get(endpoint);
    if (headers === undefined) {
      headers = openHeaders(o.secretsKey, endpoint.id, endpoint.headers);
      opened.set(endpoint, headers);
    }
    return headers;
  };
  /** Outcomes being saved after their slot was freed. */
  const saving = new Set<Promise<void>>();

  /** Endpoints at their concurrency here: a claim leaves their deliveries. */
  const busy = (): string[] => [...perEndpoint].filter(([, n]) => n >= settings.perEndpointConcurrency).map(([id]) => id);

  /**
   * Over its deliveries-per-second limit: how long until the next one may go.
   * One GCRA step in the limiter (Redis: shared by every process); while Redis
   * does not answer, this process's own state (the limit then holds per process).
   */
  async function rateDelayMs(endpoint: EndpointRecord, now: number): Promise<number> {
    const perSecond = endpoint.rateLimitPerSecond;
    if (perSecond === null) return 0;
    const policy = { name: 'endpoint', limit: perSecond, windowSeconds: 1, burst: perSecond };
    const key = `endpoint:${endpoint.id}`;
    const nowUs = now * 1000;
    let step;
    try {
      step = await o.limiter.take(key, policy, nowUs, 1);
    } catch {
      step = await localLimiter.take(key, policy, nowUs, 1);
    }
    if (step.allowed) return 0;
    const intervalUs = emissionIntervalUs(policy);
    return Math.ceil((step.tatUs + intervalUs - nowUs - policy.burst * intervalUs) / 1000);
  }

  async function payloadOf(d: ClaimedDelivery): Promise<{ body: Buffer; contentType: string; headers: Record<string, string>; sourceId: string | null } | string> {
    if (d.subjectKind === 'message') {
      if (d.payload) return { body: d.payload, contentType: 'application/json', headers: {}, sourceId: null };
      const message = await store.messages.get(d.subjectId);
      return message ? { body: message.payload, contentType: 'application/json', headers: {}, sourceId: null } : `message ${d.subjectId} no longer exists`;
    }
    const event = await store.events.get(d.subjectId);
    if (!event) return `event ${d.subjectId} no longer exists`;
    if (event.body === null) return `the body of event ${d.subjectId} is no longer kept (retention)`;
    return { body: event.body, contentType: event.headers['content-type'] ?? 'application/octet-stream', headers: event.headers, sourceId: event.sourceId };
  }

  async function health(endpoint: EndpointRecord, ok: boolean, gone: boolean, now: Date): Promise<void> {
    // A success of a healthy endpoint changes nothing: no write (the common case, once per delivery).
    if (ok && endpoint.consecutiveFailures === 0 && endpoint.failingSince === null) return;
    const streak = await store.endpoints.recordResult(endpoint.id, ok, now);
    // The streak the list holds is stale now (here: other processes need not hear of every failure).
    o.router.forget();
    if (ok || !streak) return;
    const failingMs = streak.failingSince ? now.getTime() - streak.failingSince.getTime() : 0;
    const reason = gone
      ? 'gone'
      : (settings.disableAfterFailures > 0 && streak.consecutiveFailures >= settings.disableAfterFailures) || (settings.disableAfterSeconds > 0 && failingMs >= settings.disableAfterSeconds * 1000)
        ? 'failing'
        : null;
    if (reason === null) return;
    // No URL in it: paths and queries may hold the receiver's credentials, and other endpoints get this.
    const payload = { type: 'portcullis.endpoint.disabled', timestamp: now.toISOString(), data: { endpointId: endpoint.id, reason, failingSince: streak.failingSince?.toISOString() ?? null } };
    const prepared = await o.router.prepare(payload.type, Buffer.from(JSON.stringify(payload)), now);
    // Not to the endpoint itself (it may be subscribed to portcullis.*): it would get it once re-enabled, late.
    const announcement = { ...prepared, deliveries: prepared.deliveries.filter((x) => x.endpointId !== endpoint.id) };
    if (!(await store.endpoints.disable(endpoint.id, reason, now, announcement))) return;
    o.router.endpointsChanged();
    o.router.queued(announcement);
    metrics.endpointsDisabled.inc({ reason });
    log.warn({ endpointId: endpoint.id, reason, consecutiveFailures: streak.consecutiveFailures }, 'endpoint disabled');
  }

  async function attempt(d: ClaimedDelivery): Promise<void> {
    let outcome: DeliveryOutcome;
    const startedAt = clock();
    const endpoint = await o.router.endpoint(d.endpointId);
    if (!endpoint) {
      // Deleted while this delivery was on its way (sending, or routed by an instance whose list was a second old).
      await store.deliveries.finish(d, { kind: 'dead', error: 'endpoint deleted' }, null, startedAt);
      return;
    }
    if (!endpoint.enabled) {
      // Disabled since it was claimed: back in the queue, resumed when it is enabled again.
      await store.deliveries.finish(d, { kind: 'postponed', nextAttemptAt: startedAt }, null, startedAt);
      return;
    }
    const wait = await rateDelayMs(endpoint, startedAt.getTime());
    if (wait > 0) {
      await store.deliveries.finish(d, { kind: 'postponed', nextAttemptAt: new Date(startedAt.getTime() + wait) }, null, startedAt);
      return;
    }
    const payload = await payloadOf(d);
    if (typeof payload === 'string') {
      outcome = { kind: 'dead', error: payload };
      await store.deliveries.finish(d, outcome, { attempt: d.attempt, startedAt, finishedAt: startedAt, statusCode: null, latencyMs: 0, responseBody: null, error: payload, outcome: 'dead' }, startedAt);
      metrics.deliveryAttempts.inc({ endpoint: endpoint.id, outcome: 'dead' });
      return;
    }
    const res = await sendAttempt(o.client, {
      url: endpoint.url,
      keys: signingKeys(endpoint, keyOf(endpoint.id), startedAt),
      webhookId: d.subjectId,
      eventType: d.eventType,
      sourceId: payload.sourceId,
      body: payload.body,
      contentType: payload.contentType,
      eventHeaders: payload.headers,
      endpointHeaders: headersOf(endpoint),
      // Never past three quarters of the lease, or another claim could send it again meanwhile.
      timeoutMs: Math.min(endpoint.timeoutMs, Math.floor(settings.leaseMs * 0.75)),
      responseBodyMaxBytes: settings.responseBodyMaxBytes,
      now: startedAt,
    });
    const finishedAt = clock();
    if (res.ok) outcome = { kind: 'succeeded' };
    else {
      const scheduled = nextRetryDelayMs(endpoint.retrySchedule ?? o.retrySchedule, d.roundAttempt);
      const asked = res.statusCode === 429 || res.statusCode === 503 ? retryAfterMs(res.retryAfter ?? undefined, finishedAt, settings.retryAfterMaxSeconds * 1000) : null;
      outcome = scheduled === null ? { kind: 'dead', error: res.error! } : { kind: 'retry', nextAttemptAt: new Date(finishedAt.getTime() + Math.max(scheduled, asked ?? 0)), error: res.error! };
    }
    // The slot frees once the answer is in; the outcome is saved meanwhile (the lease keeps the
    // delivery from being claimed again until it is), so a slow commit does not idle the pool.
    await saveLater(async () => {
      // The endpoint's health first: disabled now, it is not claimed again by a concurrent claim
      // in the moment between this outcome being saved and the disabling.
      await health(endpoint, res.ok, res.statusCode === 410, finishedAt);
      const recorded = await store.deliveries.finish(
        d,
        outcome,
        {
          attempt: d.attempt,
          startedAt,
          finishedAt,
          statusCode: res.statusCode,
          latencyMs: res.latencyMs,
          responseBody: res.responseBody,
          error: res.error,
          outcome: outcome.kind === 'succeeded' ? 'succeeded' : outcome.kind === 'dead' ? 'dead' : 'retry',
        },
        finishedAt,
      );
      if (!recorded) log.warn({ deliveryId: d.id }, 'delivery lease lost before its outcome was saved; another dispatcher has it');
      metrics.deliveryAttempts.inc({ endpoint: endpoint.id, outcome: outcome.kind });
      metrics.deliveryAttemptDuration.observe({ endpoint: endpoint.id }, res.latencyMs / 1000);
      if (res.ok) metrics.deliveryEndToEnd.observe((finishedAt.getTime() - d.createdAt.getTime()) / 1000);
      if (outcome.kind === 'dead') log.warn({ deliveryId: d.id, endpointId: endpoint.id, attempts: d.attempt, error: res.error }, 'delivery dead-lettered');
    }, d.id);
  }

  /** Starts saving an outcome; waits only while `concurrency` saves are already under way. */
  async function saveLater(save: () => Promise<void>, deliveryId: string): Promise<void> {
    const saved = save().catch((err: Error) => log.warn({ deliveryId, err: err.message }, 'delivery outcome not saved; retried after its lease'));
    saving.add(saved);
    void saved.finally(() => saving.delete(saved));
    while (saving.size > settings.concurrency) await Promise.race(saving);
  }

  /** Over its concurrency already (claimed in one batch with others of its own): back in the queue, uncounted. */
  async function run(d: ClaimedDelivery): Promise<void> {
    const running = perEndpoint.get(d.endpointId) ?? 0;
    perEndpoint.set(d.endpointId, running + 1);
    try {
      if (running >= settings.perEndpointConcurrency) await store.deliveries.finish(d, { kind: 'postponed', nextAttemptAt: clock() }, null, clock());
      else await attempt(d);
    } catch (err) {
      log.warn({ deliveryId: d.id, err: (err as Error).message }, 'delivery attempt not saved; retried after its lease');
    } finally {
      const left = (perEndpoint.get(d.endpointId) ?? 1) - 1;
      if (left > 0) perEndpoint.set(d.endpointId, left);
      else perEndpoint.delete(d.endpointId);
    }
  }

  const loop = startClaimLoop({
    concurrency: settings.concurrency,
    pollMs: settings.pollMs,
    claim: (free) => store.deliveries.claim({ limit: free, leaseMs: settings.leaseMs, now: clock(), skipEndpoints: busy() }),
    run,
    onClaimError: (err) => log.warn({ err: err.message }, 'claiming deliveries failed'),
    wakeup,
  });
  return {
    async stop() {
      await loop.stop();
      await Promise.allSettled([...saving]);
      await localLimiter.close();
    },
  };
}
