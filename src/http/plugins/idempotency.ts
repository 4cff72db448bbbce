import fp from 'fastify-plugin';
import { createHash } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { canonicalJson } from '../../core/canonicalJson.ts';
import { Problem } from '../../core/problems.ts';
import type { IdempotencyScope } from '../../storage/store.ts';
import type { Services } from '../services.ts';
import { hookArray } from './routeHooks.ts';

/** How long a key's first outcome is replayed. */
export const IDEMPOTENCY_TTL_MS = 24 * 60 * 60 * 1000;
/** An in-flight claim older than this belongs to a process that died; a repeat takes it over. */
export const IDEMPOTENCY_STALE_MS = 60 * 1000;
export const IDEMPOTENCY_HEADER = 'idempotency-key';
export const IDEMPOTENCY_KEY_MAX_LENGTH = 255;
/** Response headers kept with a stored response and replayed with it. */
const REPLAYED_HEADERS = ['content-type', 'location'];

declare module 'fastify' {
  interface FastifyRequest {
    idempotency: IdempotencyScope | null;
  }
  interface FastifyContextConfig {
    /** The 2xx response carries a secret: never store it; a repeat gets 409 naming the resource. */
    secretResponse?: boolean;
  }
}

async function claim(services: Services, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> {
  const header = request.headers[IDEMPOTENCY_HEADER];
  if (header === undefined || !request.auth) return undefined;
  const value = Array.isArray(header) ? header[0] : header;
  if (!value || value.length > IDEMPOTENCY_KEY_MAX_LENGTH || !/^[\x21-\x7e]+$/.test(value)) {
    throw new Problem('validation-failed', { detail: `Idempotency-Key must be 1 to ${IDEMPOTENCY_KEY_MAX_LENGTH} visible ASCII characters` });
  }
  const scope: IdempotencyScope = { keyId: request.auth.keyId, idempotencyKey: value, method: request.method, path: request.url.split('?')[0]! };
  const hash = createHash('sha256').update(canonicalJson(request.body ?? null)).digest('base64url');
  const now = services.clock();
  const existing = await services.store.idempotency.begin(
    scope,
    hash,
    now,
    new Date(now.getTime() - IDEMPOTENCY_STALE_MS),
    new Date(now.getTime() - IDEMPOTENCY_TTL_MS),
  );
  if (!existing) {
    request.idempotency = scope;
    return undefined;
  }
  if (existing.requestHash !== hash) {
    throw new Problem('idempotency-mismatch', { detail: 'this Idempotency-Key was first used with a different body' });
  }
  if (existing.state === 'in-flight') {
    throw new Problem('idempotency-in-flight', { detail: 'a request with this Idempotency-Key is still in progress', headers: { 'retry-after': '1' } });
  }
  if (existing.state === 'completed-secret') {
    throw new Problem('idempotency-secret-not-replayed', {
      detail: `the first request created ${existing.resourceId ?? 'a resource'}; its secret was shown once and is not stored`,
      extensions: { resourceId: existing.resourceId },
    });
  }
  const { statusCode, headers, body } = existing.response;
  reply.code(statusCode).headers(headers).header('idempotent-replayed', 'true');
  // Fastify's rule for replying early from an async hook: send, then return the reply.
  return reply.send(body);
}

async function record(services: Services, request: FastifyRequest, reply: FastifyReply, payload: unknown): Promise<void> {
  const scope = request.idempotency;
  if (!scope) return;
  request.idempotency = null;
  const status = reply.statusCode;
  if (status >= 500) {
    await services.store.idempotency.release(scope);
    return;
  }
  const body = typeof payload === 'string' ? payload : '';
  if (request.routeOptions.config.secretResponse && status < 300) {
    let resourceId: string | null = null;
    try {
      const parsed = JSON.parse(body) as { id?: unknown };
      if (typeof parsed.id === 'string') resourceId = parsed.id;
    } catch {
      // not JSON: nothing to name
    }
    await services.store.idempotency.complete(scope, { resourceId });
    return;
  }
  const headers: Record<string, string> = {};
  for (const name of REPLAYED_HEADERS) {
    const value = reply.getHeader(name);
    if (value !== undefined) headers[name] = String(value);
  }
  await services.store.idempotency.complete(scope, { response: { statusCode: status, headers, body } });
}

/** Idempotency-Key on every authenticated POST route (semantics in DESIGN.md). */
export const idempotencyPlugin = fp<{ services: Services }>(
  async (app, { services }) => {
    app.decorateRequest('idempotency', null);
    const onSend = async (request: FastifyRequest, reply: FastifyReply, payload: unknown) => {
      try {
        await record(services, request, reply, payload);
      } catch (err) {
        // The response still goes out; the claim goes stale and a retry runs again.
        request.log.warn({ err: (err as Error).message }, 'idempotency record not saved');
      }
      return payload;
    };
    app.addHook('onRoute', (route) => {
      const methods = Array.isArray(route.method) ? route.method : [route.method];
      // Proxied routes stream bodies through: the upstream owns their semantics, Idempotency-Key included.
      if (!methods.includes('POST') || typeof route.config?.scope !== 'string' || route.config.proxy) return;
      const preHandler = (request: FastifyRequest, reply: FastifyReply) => claim(services, request, reply);
      route.preHandler = [preHandler, ...hookArray(route.preHandler)];
      route.onSend = [...hookArray(route.onSend), onSend];
      const schema = (route.schema ??= {}) as Record<string, unknown>;
      const headers = (schema.headers ??= { type: 'object', properties: {} }) as { properties: Record<string, unknown> };
      headers.properties[IDEMPOTENCY_HEADER] = {
        type: 'string',
        maxLength: IDEMPOTENCY_KEY_MAX_LENGTH,
        description: 'Makes the request safe to retry: for 24 h a repeat returns the first response.',
      };
    });
  },
  { name: 'portcullis-idempotency', fastify: '5.x' },
);
