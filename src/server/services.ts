import { createWakeup } from '../queue/wakeup.ts';
import { sealPlainEndpointHeaders } from './sealHeaders.ts';
import { createRouter } from '../delivery/router.ts';
import { createSourceCache } from '../ingest/sourceCache.ts';
import { createHmac, type KeyObject } from 'node:crypto';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.ts';
import { deriveKeys } from '../core/rootSecret.ts';
import { scopeCatalog } from '../core/scopes.ts';
import { createKeyVerifier } from '../keys/verifier.ts';
import { createMetrics } from '../observe/metrics.ts';
import { createMemoryLimiter } from '../ratelimit/memory.ts';
import { createRedisLimiter } from '../ratelimit/redis.ts';
import { createRateLimits } from '../ratelimit/rateLimits.ts';
import { createMeter } from '../usage/meter.ts';
import type { ProcessStep } from '../queue/worker.ts';
import { openStore } from '../storage/open.ts';
import type { Store } from '../storage/store.ts';
import type { Services } from '../http/services.ts';
import { resolveRootSecret } from './rootSecret.ts';
import { createOutboundClient } from '../outbound/client.ts';
import type { Resolver } from '../outbound/ssrf.ts';

export interface ServiceOptions {
  logger: Logger;
  clock?: () => Date;
  /** Use this store instead of opening the configured one. */
  store?: Store;
  /** Use this root secret instead of the configured or generated one. */
  rootSecret?: string;
  /** Processing steps for inbound events (tests inject failing ones). */
  processSteps?: ProcessStep[];
  /** Resolves host names for the outbound client's SSRF guard (tests inject one: there is no DNS here). */
  resolver?: Resolver;
}

/** Marks which root secret a store was initialised with, without revealing it. */
export function secretCheck(pepper: KeyObject): string {
  return createHmac('sha256', pepper).update('portcullis secret check').digest('base64url');
}

/** How long startup waits for Redis before serving anyway (limits then recover by themselves). */
const LIMITER_STARTUP_WAIT_MS = 3000;

export class StartupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StartupError';
  }
}

/** Opens and migrates the store, and wires the services the app runs on. */
export async function createServices(config: Config, options: ServiceOptions): Promise<Services> {
  const rootSecret = options.rootSecret ?? resolveRootSecret(config);
  const { apiKeyPepper, secretsEncryptionKey } = deriveKeys(rootSecret);
  const store = options.store ?? openStore(config);
  try {
    await store.migrate();
    const recorded = await store.meta.get('secret_check');
    if (recorded !== null && recorded !== secretCheck(apiKeyPepper)) {
      throw new StartupError('the root secret differs from the one this store was initialised with: set PORTCULLIS_SECRET_KEY (or secret.key) to the original');
    }
    const sealed = await sealPlainEndpointHeaders(store, secretsEncryptionKey);
    if (sealed > 0) options.logger.info({ endpoints: sealed }, 'endpoint header values stored in clear were sealed');
  } catch (err) {
    await store.close();
    throw err;
  }
  const clock = options.clock ?? (() => new Date());
  const limiter = config.redisUrl
    ? createRedisLimiter({ url: config.redisUrl, timeoutMs: config.rateLimits.timeoutMs })
    : createMemoryLimiter(undefined, () => clock().getTime() * 1000);
  if (!(await limiter.ready(LIMITER_STARTUP_WAIT_MS))) {
    options.logger.warn('the rate-limit store (Redis) is not reachable yet: each policy fails open or closed until it is');
  }
  const metrics = createMetrics({
    limiterEntries: () => limiter.entries(),
    pendingUsage: () => meter.pendingDeltas(),
    queue: () => store.jobs.depth(clock()),
  });
  const meter = createMeter(store.usage, clock, metrics, options.logger);
  store.events.onIngestCommit((deliveries) => {
    metrics.ingestCommits.inc();
    metrics.ingestBatchSize.observe(deliveries);
  });
  const flushTimer = setInterval(() => {
    meter.flush().catch((err: Error) => {
      metrics.usageFlushFailures.inc();
      options.logger.warn({ err: err.message, pending: meter.pendingDeltas() }, 'usage flush failed; kept for the next one');
    });
  }, config.metering.flushIntervalMs);
  flushTimer.unref();
  // A stored event queues its processing job: it wakes workers as well as long polls. Other
  // processes hear of both through the one `events` signal.
  const newJobs = createWakeup(() => store.signals.send('events'));
  const newEvents = createWakeup(() => {
    newJobs.wake();
    store.signals.send('events');
  });
  const newDeliveries = createWakeup(() => store.signals.send('deliveries'));
  store.signals.listen('events', () => {
    metrics.storeSignals.inc({ topic: 'events' });
    newEvents.wake();
    newJobs.wake();
  });
  store.signals.listen('deliveries', () => {
    metrics.storeSignals.inc({ topic: 'deliveries' });
    newDeliveries.wake();
  });
  const router = createRouter(store, clock, newDeliveries, config.deliveryRetrySchedule);
  const sourceCache = createSourceCache(store.sources, secretsEncryptionKey);
  const verifier = createKeyVerifier(store.keys, apiKeyPepper, clock);
  // A change made here is announced, and another process's news drops what the caches hold
  // (PostgreSQL; on SQLite they expire within a second). The router does the same for endpoints.
  store.signals.listen('sources', () => sourceCache.clear());
  store.signals.listen('keys', () => verifier.forgetAll());
  for (const topic of ['endpoints', 'sources', 'keys'] as const) store.signals.listen(topic, () => metrics.storeSignals.inc({ topic }));
  const outbound = createOutboundClient({ allow: config.ssrfAllow, ...(options.resolver ? { resolver: options.resolver } : {}) });
  return {
    limiter,
    rateLimits: createRateLimits(config, limiter, metrics, clock, options.logger),
    meter,
    // Routing to endpoints first; the steps given (tests' ones) after it.
    processSteps: [router.routeStep, ...(options.processSteps ?? [])],
    router,
    newEvents,
    newDeliveries,
    newJobs,
    sourceCache: {
      get: (idOrSlug) => sourceCache.get(idOrSlug),
      clear() {
        sourceCache.clear();
        store.signals.send('sources');
      },
    },
    outbound,
    async close() {
      newEvents.close();
      clearInterval(flushTimer);
      await meter.flush().catch((err: Error) => options.logger.error({ err: err.message, pending: meter.pendingDeltas() }, 'usage not written at shutdown'));
      await limiter.close();
      await outbound.close();
      await store.close();
    },
    config,
    scopes: scopeCatalog(config.proxy.routes.flatMap((r) => [r.scope, r.writeScope].filter((s): s is string => s !== undefined).map((s) => s.split(':')[0]!))),
    store,
    apiKeyPepper,
    secretsKey: secretsEncryptionKey,
    verifier: {
      verify: (token) => verifier.verify(token),
      forget(keyId) {
        verifier.forget(keyId);
        store.signals.send('keys');
      },
      forgetAll: () => verifier.forgetAll(),
    },
    metrics,
    clock,
    logger: options.logger,
  };
}
