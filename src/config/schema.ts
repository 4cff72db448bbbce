import { Type } from 'typebox';
import type { Static } from 'typebox';

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
    dataDir: Type.String({ default: './data', minLength: 1, description: 'Holds the SQLite store, admin.key and secret.key.' }),
    databaseUrl: Type.Optional(Type.String({ pattern: '^(sqlite:.+|postgres(ql)?://.+)$', description: '`sqlite:<path>` (default `<dataDir>/portcullis.db`) or `postgres://…`.' })),
    databaseSchema: Type.String({ default: 'portcullis', pattern: '^[a-z_][a-z0-9_]{0,62}$', description: 'PostgreSQL schema holding the tables.' }),
    redisUrl: Type.Optional(Type.String({ pattern: '^rediss?://.+$', description: 'Turns on shared rate-limit counters.' })),
    secretKey: Type.Optional(Type.String({ minLength: 32, description: 'Root secret; when unset, init generates `<dataDir>/secret.key`.' })),
    logLevel: Type.Union(LOG_LEVELS.map((l) => Type.Literal(l)), { default: 'info' }),
    bodyLimit: Type.Integer({ default: 1_048_576, minimum: 1024, description: 'Largest accepted request body on /v1 routes, in bytes.' }),
    metricsListen: Type.Optional(Type.String({ pattern: '^.+:\\d{1,5}$', description: 'host:port of a separate, unauthenticated /metrics listener.' })),
    tlsCert: Type.Optional(Type.String({ minLength: 1, description: 'PEM certificate file; with tlsKey, serve HTTPS.' })),
    tlsKey: Type.Optional(Type.String({ minLength: 1 })),
    corsOrigins: Type.Array(Type.String({ pattern: '^https?://[^/]+$' }), { default: [] }),
    ssrfAllow: Type.Array(Type.String({ minLength: 1 }), { default: [], description: 'CIDRs allowed despite the SSRF guard.' }),
    deliveryRetrySchedule: Type.Array(Type.Integer({ minimum: 0 }), { default: [0, 5, 300, 1800, 7200, 18000, 36000, 36000], description: 'Seconds between delivery attempts.' }),
    shutdownTimeoutMs: Type.Integer({ default: 10_000, minimum: 0, description: 'How long in-flight requests may take after SIGTERM.' }),
  },
  { additionalProperties: false },
);

export type Config = Static<typeof ConfigSchema>;

/** Settings whose values are never printed. */
export const SECRET_SETTINGS = ['secretKey', 'databaseUrl', 'redisUrl'] as const;

export type Setting = keyof Config;
export const SETTINGS = Object.keys(ConfigSchema.properties) as Setting[];
