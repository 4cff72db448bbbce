import type { Logger } from 'pino';
import type { Services } from '../http/services.ts';
import { startDispatcher } from '../delivery/dispatcher.ts';
import { startRetention } from '../ingest/retention.ts';
import { startWorker } from '../queue/worker.ts';

export interface Background {
  /** Stops taking new work and waits for what is in flight. */
  stop(): Promise<void>;
}

/** The work a server does besides answering requests: processing jobs, deliveries, retention. */
export function startBackground(services: Services, log: Logger): Background {
  const { config, store, clock, metrics } = services;
  const worker = startWorker(store, services.processSteps, config.processing, clock, log, metrics, services.rateLimits, services.newJobs);
  const dispatcher = startDispatcher({
    store,
    client: services.outbound,
    settings: config.delivery,
    retrySchedule: config.deliveryRetrySchedule,
    secretsKey: services.secretsKey,
    clock,
    log,
    metrics,
    wakeup: services.newDeliveries,
    router: services.router,
    limiter: services.limiter,
  });
  const retention = startRetention(store.events, config.retention, clock, log, metrics);
  return {
    async stop() {
      await Promise.all([worker.stop(), dispatcher.stop(), retention.stop()]);
    },
  };
}
