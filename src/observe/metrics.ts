import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export const METRICS_PREFIX = 'portcullis_';
/** Request latency buckets in seconds: sub-millisecond through 10 s. */
export const HTTP_DURATION_BUCKETS_S = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Deliveries per ingest commit: powers of two up to the batch cap (INGEST_BATCH_MAX, 256). */
export const INGEST_BATCH_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256];

/** One registry per app, so tests can run several apps in one process. */
export interface Metrics {
  registry: Registry;
  httpRequests: Counter<'method' | 'route' | 'status'>;
  httpDuration: Histogram<'method' | 'route' | 'status'>;
  authFailures: Counter<'reason'>;
  rateLimited: Counter<'policy'>;
  rateLimitStoreErrors: Counter<'policy' | 'outcome'>;
  quotaWarnings: Counter;
  webhooksReceived: Counter<'source' | 'type'>;
  jobsFinished: Counter<'outcome'>;
  jobDuration: Histogram<'outcome'>;
  webhooksDuplicates: Counter<'source' | 'type'>;
  webhooksRejected: Counter<'source' | 'reason'>;
  ingestDuration: Histogram<'source'>;
  /** Durable commits of inbound events; each carries the deliveries of concurrent requests (group commit). */
  ingestCommits: Counter;
  ingestBatchSize: Histogram;
  webhooksRateLimited: Counter<'source' | 'mode'>;
  webhooksProcessed: Counter<'source' | 'type'>;
  webhooksFailed: Counter<'source' | 'type'>;
  webhooksDead: Counter<'source' | 'type'>;
  retentionBodiesDeleted: Counter;
  retentionDedupDeleted: Counter;
  proxyUpstreamDuration: Histogram<'route' | 'status'>;
  proxyErrors: Counter<'route' | 'kind'>;
  quotaExceeded: Counter;
  usageFlushFailures: Counter;
  consumerGroupEvents: Counter<'group' | 'action'>;
  deliveryAttempts: Counter<'endpoint' | 'outcome'>;
  deliveryAttemptDuration: Histogram<'endpoint'>;
  deliveryEndToEnd: Histogram;
  endpointsDisabled: Counter<'reason'>;
  storeSignals: Counter<'topic'>;
  /** The request counter and histogram bound to one method, route and status. */
  httpSeries(method: string, route: string, status: number): HttpSeries;
}

export interface HttpSeries {
  requests: { inc(): void };
  duration: { observe(seconds: number): void };
}

/** Figures read when /metrics is scraped. */
export interface MetricSources {
  /** Identities the in-memory rate limiter holds state for; null with Redis. */
  limiterEntries(): number | null;
  /** Usage deltas gathered but not yet written to the store. */
  pendingUsage(): number;
  /** Jobs by state and the age of the oldest due one (read from the store at scrape). */
  queue(): Promise<{ ready: number; running: number; dead: number; oldestDueMs: number | null }>;
}

export function createMetrics(sources: MetricSources): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: METRICS_PREFIX });
  new Gauge({
    name: `${METRICS_PREFIX}rate_limit_memory_entries`,
    help: 'Identities (keys, addresses) the in-memory rate limiter holds state for; idle ones are dropped once their budget is full again.',
    registers: [registry],
    collect() {
      const entries = sources.limiterEntries();
      if (entries !== null) this.set(entries);
    },
  });
  new Gauge({
    name: `${METRICS_PREFIX}usage_pending_deltas`,
    help: 'Usage counts (key, route, day) gathered in memory and not yet written to the store.',
    registers: [registry],
    collect() {
      this.set(sources.pendingUsage());
    },
  });
  new Gauge({
    name: `${METRICS_PREFIX}queue_jobs`,
    help: 'Processing jobs by state: ready (due or scheduled), running (leased), dead (dead-lettered).',
    labelNames: ['state'],
    registers: [registry],
    async collect() {
      try {
        const q = await sources.queue();
        for (const state of ['ready', 'running', 'dead'] as const) this.set({ state }, q[state]);
        oldest.set(q.oldestDueMs === null ? 0 : q.oldestDueMs / 1000);
      } catch {
        // The store is down: the scrape still answers, without fresh queue figures.
      }
    },
  });
  const oldest = new Gauge({
    name: `${METRICS_PREFIX}queue_oldest_due_seconds`,
    help: 'How long the oldest due job has been waiting (0 when none is due).',
    registers: [registry],
  });
  const httpRequests = new Counter({
    name: `${METRICS_PREFIX}http_requests_total`,
    help: 'HTTP requests answered, by route template and status code.',
    labelNames: ['method', 'route', 'status'],
    registers: [registry],
  });
  const httpDuration = new Histogram({
    name: `${METRICS_PREFIX}http_request_duration_seconds`,
    help: 'Time from receiving a request to sending its response, by route template and status code.',
    labelNames: ['method', 'route', 'status'],
    buckets: HTTP_DURATION_BUCKETS_S,
    registers: [registry],
  });
  // Bound children, so a request does not hash its label set twice; routes and statuses are few.
  const series = new Map<string, HttpSeries>();
  return {
    registry,
    httpRequests,
    httpDuration,
    httpSeries(method, route, status) {
      const id = `${method} ${status} ${route}`;
      let found = series.get(id);
      if (!found) {
        const labels = { method, route, status: String(status) };
        found = { requests: httpRequests.labels(labels), duration: httpDuration.labels(labels) };
        series.set(id, found);
      }
      return found;
    },
    rateLimited: new Counter({
      name: `${METRICS_PREFIX}rate_limited_total`,
      help: 'Checks that found a rate-limit policy exhausted, by policy: a request refused with 429, or the processing of a throttled source postponed (portcullis_webhooks_rate_limited_total{mode} tells them apart).',
      labelNames: ['policy'],
      registers: [registry],
    }),
    rateLimitStoreErrors: new Counter({
      name: `${METRICS_PREFIX}rate_limit_store_errors_total`,
      help: 'Rate-limit checks the limiter store (Redis) could not answer, by policy and whether the request was then allowed (fail-open) or refused (fail-closed).',
      labelNames: ['policy', 'outcome'],
      registers: [registry],
    }),
    proxyUpstreamDuration: new Histogram({
      name: `${METRICS_PREFIX}proxy_upstream_duration_seconds`,
      help: 'Proxy mode: time from the request to the upstream response headers, by route prefix and upstream status.',
      labelNames: ['route', 'status'],
      buckets: HTTP_DURATION_BUCKETS_S,
      registers: [registry],
    }),
    proxyErrors: new Counter({
      name: `${METRICS_PREFIX}proxy_errors_total`,
      help: 'Proxy mode: upstream requests that failed, by route prefix and kind (upstream-unavailable, upstream-timeout).',
      labelNames: ['route', 'kind'],
      registers: [registry],
    }),
    jobsFinished: new Counter({
      name: `${METRICS_PREFIX}jobs_finished_total`,
      help: 'Processing attempts finished, by outcome (done, retry, dead).',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    jobDuration: new Histogram({
      name: `${METRICS_PREFIX}job_duration_seconds`,
      help: 'Time a processing attempt took, by outcome.',
      labelNames: ['outcome'],
      buckets: HTTP_DURATION_BUCKETS_S,
      registers: [registry],
    }),
    webhooksReceived: new Counter({
      name: `${METRICS_PREFIX}webhooks_received_total`,
      help: 'Inbound deliveries verified and durably stored, by source and event type.',
      labelNames: ['source', 'type'],
      registers: [registry],
    }),
    webhooksDuplicates: new Counter({
      name: `${METRICS_PREFIX}webhooks_duplicates_total`,
      help: 'Inbound deliveries acknowledged as duplicates of a stored event (not stored again), by source and event type.',
      labelNames: ['source', 'type'],
      registers: [registry],
    }),
    webhooksRejected: new Counter({
      name: `${METRICS_PREFIX}webhooks_rejected_total`,
      help: 'Inbound deliveries refused, by source and reason (missing-signature, bad-signature, stale-timestamp, malformed-body, too-large).',
      labelNames: ['source', 'reason'],
      registers: [registry],
    }),
    ingestDuration: new Histogram({
      name: `${METRICS_PREFIX}ingest_duration_seconds`,
      help: 'Time from receiving an inbound delivery to its durable commit, by source.',
      labelNames: ['source'],
      buckets: HTTP_DURATION_BUCKETS_S,
      registers: [registry],
    }),
    ingestCommits: new Counter({
      name: `${METRICS_PREFIX}ingest_commits_total`,
      help: 'Transactions that durably committed inbound deliveries; the deliveries of concurrent requests share one (group commit).',
      registers: [registry],
    }),
    ingestBatchSize: new Histogram({
      name: `${METRICS_PREFIX}ingest_batch_size`,
      help: 'Inbound deliveries per durable commit.',
      buckets: INGEST_BATCH_BUCKETS,
      registers: [registry],
    }),
    webhooksRateLimited: new Counter({
      name: `${METRICS_PREFIX}webhooks_rate_limited_total`,
      help: "Inbound deliveries held back by their source's rate-limit policy, by source and mode: reject (answered 429, not stored) or throttle (stored; counted each time its processing is postponed).",
      labelNames: ['source', 'mode'],
      registers: [registry],
    }),
    webhooksProcessed: new Counter({
      name: `${METRICS_PREFIX}webhooks_processed_total`,
      help: 'Inbound events whose processing job finished done, by source and event type.',
      labelNames: ['source', 'type'],
      registers: [registry],
    }),
    webhooksFailed: new Counter({
      name: `${METRICS_PREFIX}webhooks_failed_total`,
      help: 'Processing attempts of inbound events that failed (then retried, or dead-lettered), by source and event type.',
      labelNames: ['source', 'type'],
      registers: [registry],
    }),
    webhooksDead: new Counter({
      name: `${METRICS_PREFIX}webhooks_dead_total`,
      help: 'Inbound events dead-lettered after their last attempt failed, by source and event type.',
      labelNames: ['source', 'type'],
      registers: [registry],
    }),
    retentionBodiesDeleted: new Counter({
      name: `${METRICS_PREFIX}retention_bodies_deleted_total`,
      help: 'Event bodies removed by retention (retention.bodyDays).',
      registers: [registry],
    }),
    retentionDedupDeleted: new Counter({
      name: `${METRICS_PREFIX}retention_dedup_deleted_total`,
      help: 'Dedup records deleted by the retention sweep once their window had passed.',
      registers: [registry],
    }),
    quotaWarnings: new Counter({
      name: `${METRICS_PREFIX}quota_warnings_total`,
      help: 'Requests admitted at or above their key\'s soft monthly quota.',
      registers: [registry],
    }),
    quotaExceeded: new Counter({
      name: `${METRICS_PREFIX}quota_exceeded_total`,
      help: 'Requests refused (429 quota-exceeded) by their key\'s hard monthly quota.',
      registers: [registry],
    }),
    deliveryAttempts: new Counter({
      name: `${METRICS_PREFIX}delivery_attempts_total`,
      help: 'Outbound delivery attempts by endpoint and outcome (succeeded, retry, dead; postponed ones are not attempts).',
      labelNames: ['endpoint', 'outcome'],
      registers: [registry],
    }),
    deliveryAttemptDuration: new Histogram({
      name: `${METRICS_PREFIX}delivery_attempt_duration_seconds`,
      help: 'Time from sending a delivery to the end of reading its (truncated) answer, by endpoint.',
      labelNames: ['endpoint'],
      buckets: HTTP_DURATION_BUCKETS_S,
      registers: [registry],
    }),
    deliveryEndToEnd: new Histogram({
      name: `${METRICS_PREFIX}delivery_end_to_end_seconds`,
      help: 'Time from a message or event being routed to its successful delivery.',
      buckets: [...HTTP_DURATION_BUCKETS_S, 30, 60, 300, 1800, 3600, 21_600, 86_400],
      registers: [registry],
    }),
    endpointsDisabled: new Counter({
      name: `${METRICS_PREFIX}endpoints_disabled_total`,
      help: 'Endpoints disabled automatically, by reason (gone: answered 410; failing: failed too long).',
      labelNames: ['reason'],
      registers: [registry],
    }),
    storeSignals: new Counter({
      name: `${METRICS_PREFIX}store_signals_received_total`,
      help: 'Signals from other processes sharing the store (PostgreSQL LISTEN/NOTIFY), by topic: events and deliveries wake this process\'s waiting readers; endpoints, sources and keys drop what its caches hold.',
      labelNames: ['topic'],
      registers: [registry],
    }),
    consumerGroupEvents: new Counter({
      name: `${METRICS_PREFIX}consumer_group_events_total`,
      help: 'Events consumer groups handed out or settled, by group name and action (leased, redelivered, acked, nacked).',
      labelNames: ['group', 'action'],
      registers: [registry],
    }),
    usageFlushFailures: new Counter({
      name: `${METRICS_PREFIX}usage_flush_failures_total`,
      help: 'Writes of gathered usage to the store that failed (the counts are kept and written later).',
      registers: [registry],
    }),
    authFailures: new Counter({
    name: `${METRICS_PREFIX}auth_failures_total`,
    help: 'Requests refused by API key authentication, by reason.',
    labelNames: ['reason'],
      registers: [registry],
    }),
  };
}
