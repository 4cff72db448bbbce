import type { KeyObject } from 'node:crypto';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.ts';
import type { Store } from '../storage/store.ts';
import type { KeyVerifier } from '../keys/verifier.ts';
import type { Metrics } from '../observe/metrics.ts';
import type { Limiter } from '../ratelimit/limiter.ts';
import type { RateLimits } from '../ratelimit/rateLimits.ts';
import type { Meter } from '../usage/meter.ts';
import type { ProcessStep } from '../queue/worker.ts';
import type { Wakeup } from '../queue/wakeup.ts';
import type { Router } from '../delivery/router.ts';
import type { SourceCache } from '../ingest/sourceCache.ts';
import type { ScopeCatalog } from '../core/scopes.ts';
import type { OutboundClient } from '../outbound/client.ts';

/** Everything route handlers use, built once by `createServices`. */
export interface Services {
  config: Config;
  /** Built-in scopes plus those proxy routes declare. */
  scopes: ScopeCatalog;
  store: Store;
  /** Derived from the root secret: the HMAC key for API key hashes. */
  apiKeyPepper: KeyObject;
  /** Derived from the root secret: seals source and endpoint secrets at rest. */
  secretsKey: KeyObject;
  verifier: KeyVerifier;
  metrics: Metrics;
  clock: () => Date;
  logger: Logger;
  /** Rate-limit state: in this process, or in Redis when `redisUrl` is set. */
  limiter: Limiter;
  /** The configured policies over the limiter. */
  rateLimits: RateLimits;
  /** Usage metering and monthly quotas. */
  meter: Meter;
  /** What processing an inbound event does, in order (routing, transformations and deliveries plug in here). */
  processSteps: ProcessStep[];
  /** Notified when an event is stored, so consumer-group long polls answer at once. */
  newEvents: Wakeup;
  /** Notified when deliveries are queued, so this process's dispatcher starts on them at once. */
  newDeliveries: Wakeup;
  /** Notified when jobs are queued (an event stored or replayed), so an idle worker starts at once. */
  newJobs: Wakeup;
  /** Routes messages and inbound events to endpoints; endpoint routes tell it when endpoints change. */
  router: Router;
  /** Sources as `/in/` reads them, secrets unsealed; source routes clear it on every change. */
  sourceCache: SourceCache;
  /**
   * The SSRF-guarded HTTP client for destinations API callers give (endpoint URLs):
   * `ssrfAllow` applies. Endpoint routes check URLs with it; deliveries go through it.
   */
  outbound: OutboundClient;
  /** Writes pending usage, then closes the limiter and the store. */
  close(): Promise<void>;
}
