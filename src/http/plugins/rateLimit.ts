import fp from 'fastify-plugin';
import type { FastifyReply, FastifyRequest, onRequestAsyncHookHandler } from 'fastify';
import { clientBucket } from '../../core/addresses.ts';
import { describeStep } from '../../core/gcra.ts';
import type { GcraStep, RateDecision, RatePolicy } from '../../core/gcra.ts';
import { Problem } from '../../core/problems.ts';
import type { Config } from '../../config/schema.ts';
import { LimiterUnavailable } from '../../ratelimit/limiter.ts';
import type { Services } from '../services.ts';
import { hookArray } from './routeHooks.ts';

export interface Policy extends RatePolicy {
  onStoreError: 'open' | 'closed' | null;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Every rate-limit decision taken for this request so far. */
    rateLimits: RateDecision[] | null;
  }
}

/** Seconds a client should wait after the limiter store failed closed. */
export const LIMITER_UNAVAILABLE_RETRY_AFTER_S = 1;
const READ_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

export function policiesFrom(config: Config): Map<string, Policy> {
  return new Map(
    Object.entries(config.rateLimits.policies).map(([name, p]) => [
      name,
      { name, limit: p.limit, windowSeconds: p.window, burst: p.burst ?? p.limit, onStoreError: p.onStoreError ?? null },
    ]),
  );
}

/** RFC draft-ietf-httpapi-ratelimit-headers (structured fields) plus the legacy X-RateLimit-* trio. */
function setHeaders(reply: FastifyReply, decisions: RateDecision[], nowMs: number): void {
  reply.header('ratelimit-policy', decisions.map((d) => `"${d.policy.name}";q=${d.policy.limit};w=${d.policy.windowSeconds}`).join(', '));
  reply.header('ratelimit', decisions.map((d) => `"${d.policy.name}";r=${d.remaining};t=${d.resetSeconds}`).join(', '));
  // The legacy headers describe one policy: the one that refused, else the one closest to refusing.
  const tightest = decisions.reduce((a, b) => (!b.allowed && a.allowed) || (b.allowed === a.allowed && b.remaining < a.remaining) ? b : a);
  reply.header('x-ratelimit-limit', String(tightest.policy.limit));
  reply.header('x-ratelimit-remaining', String(tightest.remaining));
  reply.header('x-ratelimit-reset', String(Math.ceil(nowMs / 1000) + tightest.resetSeconds));
}

/**
 * Rate limits by named policy (GCRA, exact under concurrency, in memory or in
 * Redis): per client address on every /v1 route before authentication, per API
 * key after it (the key's own policy, else `rateLimits.perKey`), and per route
 * (`rateLimits.routes`, counted per key, or per address when unauthenticated).
 */
export const rateLimitPlugin = fp<{ services: Services }>(
  async (app, { services }) => {
    const { config, limiter, metrics, clock } = services;
    const policies = policiesFrom(config);
    const { perKey, perIp, routes } = config.rateLimits;
    app.decorateRequest('rateLimits', null);
    const unknownPolicyWarned = new Set<string>();

    async function apply(request: FastifyRequest, reply: FastifyReply, policy: Policy, identity: string): Promise<void> {
      const nowMs = clock().getTime();
      const nowUs = nowMs * 1000;
      let step: GcraStep;
      try {
        const taken = limiter.take(`${policy.name}:${identity}`, policy, nowUs, 1);
        step = taken instanceof Promise ? await taken : taken;
      } catch (err) {
        if (!(err instanceof LimiterUnavailable)) throw err;
        const closed = (policy.onStoreError ?? (READ_METHODS.has(request.method) ? 'open' : 'closed')) === 'closed';
        metrics.rateLimitStoreErrors.inc({ policy: policy.name, outcome: closed ? 'refused' : 'allowed' });
        request.log.warn({ policy: policy.name, err: err.message, failClosed: closed }, 'rate-limit store unavailable');
        if (!closed) return;
        throw new Problem('rate-limiter-unavailable', { headers: { 'retry-after': String(LIMITER_UNAVAILABLE_RETRY_AFTER_S) }, extensions: { policy: policy.name } });
      }
      const decision = describeStep(policy, step, nowUs, 1);
      (request.rateLimits ??= []).push(decision);
      setHeaders(reply, request.rateLimits, nowMs);
      if (decision.allowed) return;
      metrics.rateLimited.inc({ policy: policy.name });
      throw new Problem('rate-limited', {
        detail: `policy ${policy.name} allows ${policy.limit} requests per ${policy.windowSeconds} s`,
        headers: { 'retry-after': String(decision.retryAfterSeconds) },
        extensions: { policy: policy.name },
      });
    }

    const address = (request: FastifyRequest): string => `ip:${clientBucket(request.ip, config.ipv6Prefix)}`;

    function keyPolicy(request: FastifyRequest): Policy | undefined {
      const own = request.auth?.key.rateLimitPolicy;
      if (own) {
        const policy = policies.get(own);
        if (policy) return policy;
        // The key names a policy the configuration no longer has: fall back to the default.
        if (!unknownPolicyWarned.has(own)) request.log.warn({ policy: own, keyId: request.auth?.keyId }, 'key names an unknown rate-limit policy; using the default');
        unknownPolicyWarned.add(own);
      }
      return perKey ? policies.get(perKey) : undefined;
    }

    const ipPolicy = perIp ? policies.get(perIp) : undefined;
    const byAddress: onRequestAsyncHookHandler = async (request, reply) => apply(request, reply, ipPolicy!, address(request));
    const byKey: onRequestAsyncHookHandler = async (request, reply) => {
      const policy = keyPolicy(request);
      if (policy && request.auth) await apply(request, reply, policy, `key:${request.auth.keyId}`);
    };
    // Routes may be written as the docs show them (`/v1/keys/{id}`) or as Fastify does (`/v1/keys/:id`).
    const routeNames = new Map(Object.entries(routes).map(([route, name]) => [route.replace(/\{([^}]+)\}/g, ':$1'), name]));
    const seenRoutes = new Set<string>();

    app.addHook('onRoute', (route) => {
      if (!route.url.startsWith('/v1/') && !route.url.startsWith('/in/')) return;
      const methods = Array.isArray(route.method) ? route.method : [route.method];
      const before = ipPolicy ? [byAddress] : [];
      const after: onRequestAsyncHookHandler[] = [];
      if (typeof route.config?.scope === 'string') after.push(byKey);
      for (const method of methods) {
        const name = routeNames.get(`${method} ${route.url}`);
        if (!name) continue;
        seenRoutes.add(`${method} ${route.url}`);
        const policy = policies.get(name)!;
        after.push(async (request, reply) => apply(request, reply, policy, `route:${method} ${route.url}:${request.auth ? `key:${request.auth.keyId}` : address(request)}`));
      }
      route.onRequest = [...before, ...hookArray(route.onRequest), ...after];
    });

    app.addHook('onReady', async () => {
      const unknown = [...routeNames.keys()].filter((r) => !seenRoutes.has(r));
      if (unknown.length > 0) throw new Error(`rateLimits.routes names routes that do not exist: ${unknown.join(', ')}`);
    });
  },
  { name: 'portcullis-rate-limit', fastify: '5.x', dependencies: ['portcullis-auth'] },
);
