import fp from 'fastify-plugin';
import cors from '@fastify/cors';

/** What a browser may send and read across origins. */
export const CORS_ALLOWED_HEADERS = ['authorization', 'content-type', 'idempotency-key'];
export const CORS_EXPOSED_HEADERS = [
  'x-request-id',
  'location',
  'retry-after',
  'ratelimit-policy',
  'ratelimit',
  'x-ratelimit-limit',
  'x-ratelimit-remaining',
  'x-ratelimit-reset',
];
export const CORS_MAX_AGE_S = 600;

/**
 * CORS, closed unless configured: only exact origins from the allow-list get
 * any CORS header at all; any other origin — and its preflight, which then
 * finds no route (404) — gets none. Never `*`.
 */
export const corsPlugin = fp<{ origins: string[]; credentials: boolean }>(
  async (app, { origins, credentials }) => {
    if (origins.length === 0) return;
    const allowed = new Set(origins);
    await app.register(cors, {
      // Returning false turns CORS off for that request: no headers, no preflight answer.
      origin: (origin, callback) => callback(null, origin !== undefined && allowed.has(origin) ? origin : false),
      credentials,
      allowedHeaders: CORS_ALLOWED_HEADERS,
      exposedHeaders: CORS_EXPOSED_HEADERS,
      methods: ['GET', 'HEAD', 'POST', 'PATCH', 'PUT', 'DELETE'],
      maxAge: CORS_MAX_AGE_S,
      strictPreflight: false,
    });
  },
  { name: 'portcullis-cors', fastify: '5.x' },
);
