import { Type } from 'typebox';
import type { Static } from 'typebox';

const POLICY_NAME = '^[a-z0-9][a-z0-9_.-]{0,63}$';

export const RateLimitPolicySchema = Type.Object(
  {
    limit: Type.Integer({ minimum: 1, description: 'Requests per window.' }),
    window: Type.Integer({ minimum: 1, maximum: 31_536_000, description: 'Window length in seconds.' }),
    burst: Type.Optional(Type.Integer({ minimum: 1, description: 'Requests allowed at once; default `limit`.' })),
    onStoreError: Type.Optional(
      Type.Union([Type.Literal('open'), Type.Literal('closed')], {
        description: 'When the limiter store (Redis) cannot answer: let requests through, or refuse them with 503. Default: closed for writes, open for reads.',
      }),
    ),
  },
  { additionalProperties: false },
);

export const RateLimitsSchema = Type.Object(
  {
    policies: Type.Record(Type.String({ pattern: POLICY_NAME }), RateLimitPolicySchema, { default: {}, description: 'Named policies.' }),
    perKey: Type.Optional(Type.String({ pattern: POLICY_NAME, description: 'Policy for every API key that names none of its own.' })),
    perIp: Type.Optional(Type.String({ pattern: POLICY_NAME, description: 'Policy per client address (IPv6 per prefix), checked before authentication.' })),
    routes: Type.Record(Type.String({ pattern: '^[A-Z]+ /' }), Type.String({ pattern: POLICY_NAME }), {
      default: {},
      description: '`"METHOD /route/{template}": policy`, counted per key (per address when unauthenticated).',
    }),
    timeoutMs: Type.Integer({ default: 250, minimum: 1, maximum: 10_000, description: 'Longest a limiter step may take before the policy fails open or closed.' }),
  },
  { additionalProperties: false, default: {} },
);

export const MeteringSchema = Type.Object(
  {
    routeCosts: Type.Record(Type.String({ pattern: '^[A-Z]+ /' }), Type.Integer({ minimum: 0, maximum: 1_000_000 }), {
      default: {},
      description: '`"METHOD /route/{template}": units` a request costs against quotas; 1 when not listed.',
    }),
    flushIntervalMs: Type.Integer({ default: 1000, minimum: 50, maximum: 60_000, description: 'How often gathered usage is written to the store.' }),
  },
  { additionalProperties: false, default: {} },
);

export const ProxyRouteSchema = Type.Object(
  {
    prefix: Type.String({ pattern: '^/[A-Za-z0-9._~-]+(/[A-Za-z0-9._~-]+)*/$', description: 'Path prefix served by this route, e.g. `/api/`.' }),
    upstream: Type.String({ pattern: '^https?://[^/?#]+(/[^?#]*)?$', description: 'Base URL requests go to, e.g. `http://127.0.0.1:9000`.' }),
    stripPrefix: Type.Boolean({ default: true, description: '`/api/users` goes to `<upstream>/users` (false: `<upstream>/api/users`).' }),
    scope: Type.String({ pattern: '^[a-z][a-z0-9-]{0,39}:(read|write)$', description: 'Scope a key needs, e.g. `api:read`.' }),
    writeScope: Type.Optional(Type.String({ pattern: '^[a-z][a-z0-9-]{0,39}:(read|write)$', description: 'Scope for POST, PUT, PATCH and DELETE; default `scope`.' })),
    rateLimit: Type.Optional(Type.String({ pattern: POLICY_NAME, description: 'Policy for this route, per key.' })),
    cost: Type.Integer({ default: 1, minimum: 0, maximum: 1_000_000, description: 'Units a request costs against quotas.' }),
    credential: Type.Optional(
      Type.Object(
        {
          header: Type.String({ pattern: '^[A-Za-z0-9-]+$', description: 'Header the upstream expects, e.g. `authorization`.' }),
          env: Type.Optional(Type.String({ pattern: '^[A-Z_][A-Z0-9_]*$', description: 'Environment variable holding its value (or `<NAME>_FILE` naming a file). Preferred.' })),
          value: Type.Optional(Type.String({ minLength: 1, description: 'The value itself; filled from `env` at startup. Never printed.' })),
        },
        { additionalProperties: false, description: "Injected into every forwarded request; the caller's own key never is." },
      ),
    ),
    connectTimeoutMs: Type.Integer({ default: 5000, minimum: 1, maximum: 600_000 }),
    responseTimeoutMs: Type.Integer({ default: 60_000, minimum: 1, maximum: 3_600_000, description: 'Until the response headers arrive, and between two body chunks.' }),
    bodyLimit: Type.Integer({ default: 10_485_760, minimum: 0, description: 'Largest request body forwarded, in bytes (413 above).' }),
  },
  { additionalProperties: false },
);

export const ProxySchema = Type.Object(
  { routes: Type.Array(ProxyRouteSchema, { default: [], description: 'Operator-configured routes forwarded to upstreams.' }) },
  { additionalProperties: false, default: {} },
);

export const ProcessingSchema = Type.Object(
  {
    maxAttempts: Type.Integer({ default: 8, minimum: 1, maximum: 100, description: 'Attempts before a job is dead-lettered.' }),
    backoffBaseMs: Type.Integer({ default: 1000, minimum: 1, description: 'First retry delay ceiling; doubles per attempt, with full jitter.' }),
    backoffMaxMs: Type.Integer({ default: 3_600_000, minimum: 1, description: 'Longest retry delay.' }),
    leaseMs: Type.Integer({ default: 60_000, minimum: 100, description: "How long a worker holds a job; a crashed worker's jobs are reclaimed after it." }),
    stepTimeoutMs: Type.Integer({ default: 30_000, minimum: 1, description: 'A processing step that takes longer fails (and is retried).' }),
    concurrency: Type.Integer({ default: 8, minimum: 1, maximum: 1000, description: 'Jobs a process works on at once.' }),
    pollMs: Type.Integer({ default: 200, minimum: 5, maximum: 60_000, description: 'How often an idle worker looks for due jobs.' }),
  },
  { additionalProperties: false, default: {} },
);

export const DeliverySchema = Type.Object(
  {
    concurrency: Type.Integer({ default: 64, minimum: 1, maximum: 10_000, description: 'Deliveries a process attempts at once, over all endpoints.' }),
    perEndpointConcurrency: Type.Integer({ default: 8, minimum: 1, maximum: 1000, description: 'Deliveries attempted at once to one endpoint, so a slow endpoint never takes the whole pool.' }),
    leaseMs: Type.Integer({ default: 120_000, minimum: 1000, description: "How long a dispatcher holds a delivery; a crashed dispatcher's are retried after it. An attempt is cut at three quarters of it whatever the endpoint's timeout, so it is never sent twice at once." }),
    pollMs: Type.Integer({ default: 200, minimum: 5, maximum: 60_000, description: 'How often an idle dispatcher looks for due deliveries.' }),
    retryAfterMaxSeconds: Type.Integer({ default: 3600, minimum: 0, description: "Longest wait a receiver's Retry-After (on 429 and 503) can ask for." }),
    disableAfterSeconds: Type.Integer({ default: 5 * 86_400, minimum: 0, description: 'An endpoint failing without a success for this long is disabled (0: never).' }),
    disableAfterFailures: Type.Integer({ default: 0, minimum: 0, description: 'An endpoint failing this many attempts in a row is disabled (0: no such limit).' }),
    responseBodyMaxBytes: Type.Integer({ default: 4096, minimum: 0, maximum: 65_536, description: "Bytes of a receiver's answer kept with the attempt; the rest is never read." }),
  },
  { additionalProperties: false, default: {} },
);

export const RetentionSchema = Type.Object(
  {
    bodyDays: Type.Integer({
      default: 30,
      minimum: 0,
      maximum: 36_500,
      description: 'Days an event keeps its raw body once it is no longer pending (processed or dead); then the body is removed and the rest of the event kept. 0: keep bodies forever.',
    }),
    sweepIntervalMs: Type.Integer({ default: 600_000, minimum: 10, maximum: 86_400_000, description: 'How often the retention sweep runs (it also deletes dedup records whose window has passed).' }),
    batchSize: Type.Integer({ default: 500, minimum: 1, maximum: 100_000, description: 'Rows changed per transaction; a sweep runs batches until none is left.' }),
  },
  { additionalProperties: false, default: {} },
);

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/**
 * Every setting, with its default. Each key is also an environment variable:
 * `dataDir` ↔ `PORTCULLIS_DATA_DIR`. Any variable may instead be read from a
 * file named by `<NAME>_FILE` (for secrets mounted as files).
 */
export const ConfigSchema = Type.Object(
  {
    host: Type.String({ default: '127.0.0.1', minLength: 1, description: 'Address the API listens on.' }),
    port: Type.Integer({ default: 8080, minimum: 0, maximum: 65535 }),
    role: Type.Union([Type.Literal('all'), Type.Literal('api'), Type.Literal('worker')], {
      default: 'all',
      description:
        'What this process runs: `all` (the API and the background work), `api` (the API only: ingest, publish, reads), or `worker` (processing jobs, deliveries and retention, with only /healthz, /readyz and /metrics on its port). Scale out with api and worker processes on one PostgreSQL store.',
    }),
    dataDir: Type.String({ default: './data', minLength: 1, description: 'Holds the SQLite store, admin.key and secret.key.' }),
    databaseUrl: Type.Optional(Type.String({ pattern: '^(sqlite:.+|postgres(ql)?://.+)$', description: '`sqlite:<path>` (default `<dataDir>/portcullis.db`) or `postgres://…`.' })),
    databaseSchema: Type.String({ default: 'portcullis', pattern: '^[a-z_][a-z0-9_]{0,62}$', description: 'PostgreSQL schema holding the tables.' }),
    databaseStatementTimeoutMs: Type.Integer({
      default: 30_000,
      minimum: 100,
      maximum: 3_600_000,
      description:
        'PostgreSQL: a statement running longer is cancelled by the server. A query with no answer for this long plus 3 s (a server or network gone silent) fails in the process, and its connection is dropped.',
    }),
    redisUrl: Type.Optional(Type.String({ pattern: '^rediss?://.+$', description: 'Turns on shared rate-limit counters.' })),
    secretKey: Type.Optional(Type.String({ minLength: 32, description: 'Root secret; when unset, init generates `<dataDir>/secret.key`.' })),
    logLevel: Type.Union(LOG_LEVELS.map((l) => Type.Literal(l)), { default: 'info' }),
    bodyLimit: Type.Integer({ default: 1_048_576, minimum: 1024, description: 'Largest accepted request body on /v1 routes, in bytes.' }),
    metricsListen: Type.Optional(Type.String({ pattern: '^.+:\\d{1,5}$', description: 'host:port of a separate, unauthenticated /metrics listener.' })),
    tlsCert: Type.Optional(Type.String({ minLength: 1, description: 'PEM certificate file; with tlsKey, serve HTTPS.' })),
    tlsKey: Type.Optional(Type.String({ minLength: 1 })),
    httpRedirectListen: Type.Optional(
      Type.String({ pattern: '^.+:\\d{1,5}$', description: 'host:port of a plain-HTTP listener that redirects (308) every request to the HTTPS address. Needs tlsCert.' }),
    ),
    trustProxy: Type.Array(Type.String({ minLength: 1 }), {
      default: [],
      description: 'Addresses or CIDRs of reverse proxies whose X-Forwarded-For is believed. Empty: the header is ignored.',
    }),
    ipv6Prefix: Type.Integer({ default: 64, minimum: 1, maximum: 128, description: 'IPv6 clients are rate-limited per prefix of this length.' }),
    rateLimits: RateLimitsSchema,
    metering: MeteringSchema,
    proxy: ProxySchema,
    processing: ProcessingSchema,
    retention: RetentionSchema,
    delivery: DeliverySchema,
    corsOrigins: Type.Array(Type.String({ pattern: '^https?://[^/*]+$' }), {
      default: [],
      description: 'Exact origins (`https://app.example.com`) browsers may call the API from. Empty: no CORS headers at all.',
    }),
    corsCredentials: Type.Boolean({ default: false, description: 'Send `Access-Control-Allow-Credentials: true` to allowed origins.' }),
    ssrfAllow: Type.Array(Type.String({ minLength: 1 }), { default: [], description: 'CIDRs allowed despite the SSRF guard.' }),
    deliveryRetrySchedule: Type.Array(Type.Integer({ minimum: 0 }), { default: [0, 5, 300, 1800, 7200, 18000, 36000, 36000], description: 'Seconds between delivery attempts.' }),
    shutdownTimeoutMs: Type.Integer({ default: 10_000, minimum: 0, description: 'How long in-flight requests may take after SIGTERM.' }),
  },
  { additionalProperties: false },
);

export type Config = Static<typeof ConfigSchema>;
export type RateLimitsConfig = Static<typeof RateLimitsSchema>;
export type ProxyRouteConfig = Static<typeof ProxyRouteSchema>;
export type RetentionConfig = Static<typeof RetentionSchema>;
export type DeliveryConfig = Static<typeof DeliverySchema>;

/** Settings whose values are never printed. */
export const SECRET_SETTINGS = ['secretKey', 'databaseUrl', 'redisUrl'] as const;

export type Setting = keyof Config;
export const SETTINGS = Object.keys(ConfigSchema.properties) as Setting[];
