import fp from 'fastify-plugin';
import type { FastifyReply, FastifyRequest, onRequestAsyncHookHandler } from 'fastify';
import { clientBucket } from '../../core/addresses.ts';
import type { RateDecision } from '../../core/gcra.ts';
import { Problem } from '../../core/problems.ts';
import type { LimitOutcome, Policy } from '../../ratelimit/rateLimits.ts';
import type { Services } from '../services.ts';
import { configuredRoutes } from '../routeNames.ts';
import { hookArray } from './routeHooks.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** Every rate-limit decision taken for this request so far. */
    rateLimits: RateDecision[] | null;
  }
}

/** Seconds a client should wait after the limiter store failed closed. */
export const LIMITER_UNAVAILABLE_RETRY_AFTER_S = 1;
const READ_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** Headers for the decisions so far, or the problem that ends the request. */
export function applyOutcome(request: FastifyRequest, reply: FastifyReply, outcome: LimitOutcome, nowMs: number): void {
  if (outcome.kind === 'unavailable') {
    if (!outcome.failClosed) return;
    throw new Problem('rate-limiter-unavailable', { headers: { 'retry-after': String(LIMITER_UNAVAILABLE_RETRY_AFTER_S) }, extensions: { policy: outcome.policy.name } });
  }
  const { decision } = outcome;
  (request.rateLimits ??= []).push(decision);
  setHeaders(reply, request.rateLimits, nowMs);
  if (decision.allowed) return;
  const { policy } = decision;
  throw new Problem('rate-limited', {
    detail: `policy ${policy.name} allows ${policy.limit} requests per ${policy.windowSeconds} s`,
    headers: { 'retry-after': String(decision.retryAfterSeconds) },
    extensions: { policy: policy.name },
  });
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
    const { config, rateLimits, clock } = services;
    const { perIp, routes } = config.rateLimits;
    app.decorateRequest('rateLimits', null);

    async function apply(request: FastifyRequest, reply: FastifyReply, policy: Policy, identity: string): Promise<void> {
      const checked = rateLimits.check(policy, identity, !READ_METHODS.has(request.method), request.log);
      applyOutcome(request, reply, checked instanceof Promise ? await checked : checked, clock().getTime());
    }

    const address = (request: FastifyRequest): string => `ip:${clientBucket(request.ip, config.ipv6Prefix)}`;

    const ipPolicy = perIp ? rateLimits.policies.get(perIp) : undefined;
    const byAddress: onRequestAsyncHookHandler = async (request, reply) => apply(request, reply, ipPolicy!, address(request));
    const byKey: onRequestAsyncHookHandler = async (request, reply) => {
      const policy = request.auth && rateLimits.forKey(request.auth.key);
      if (policy && request.auth) await apply(request, reply, policy, `key:${request.auth.keyId}`);
    };
    const routePolicies = configuredRoutes(routes);

    app.addHook('onRoute', (route) => {
      const proxied = route.config?.proxy;
      if (!route.url.startsWith('/v1/') && !route.url.startsWith('/in/') && !proxied) return;
      const methods = Array.isArray(route.method) ? route.method : [route.method];
      const before = ipPolicy ? [byAddress] : [];
      const after: onRequestAsyncHookHandler[] = [];
      if (typeof route.config?.scope === 'string') after.push(byKey);
      for (const method of methods) {
        const name = routePolicies.lookup(method, route.url);
        if (!name) continue;
        const policy = rateLimits.policies.get(name)!;
        after.push(async (request, reply) => apply(request, reply, policy, `route:${method} ${route.url}:${request.auth ? `key:${request.auth.keyId}` : address(request)}`));
      }
      if (proxied?.rateLimit) {
        const policy = rateLimits.policies.get(proxied.rateLimit)!;
        after.push(async (request, reply) => apply(request, reply, policy, `route:${proxied.prefix}:${request.auth ? `key:${request.auth.keyId}` : address(request)}`));
      }
      route.onRequest = [...before, ...hookArray(route.onRequest), ...after];
    });

    app.addHook('onReady', async () => {
      const unknown = routePolicies.unknown();
      if (unknown.length > 0) throw new Error(`rateLimits.routes names routes that do not exist: ${unknown.join(', ')}`);
    });
  },
  { name: 'portcullis-rate-limit', fastify: '5.x', dependencies: ['portcullis-auth'] },
);
