import fp from 'fastify-plugin';
import type { FastifyReply, onRequestAsyncHookHandler } from 'fastify';
import { Problem } from '../../core/problems.ts';
import type { Admission } from '../../usage/meter.ts';
import { configuredRoutes, docsRoute } from '../routeNames.ts';
import type { Services } from '../services.ts';
import { hookArray } from './routeHooks.ts';

function quotaHeaders(reply: FastifyReply, a: Admission): void {
  reply.header('x-quota-limit', String(a.limit));
  reply.header('x-quota-remaining', String(Math.max(0, a.limit - a.used)));
  reply.header('x-quota-reset', String(Math.floor(a.resetsAt.getTime() / 1000)));
}

/**
 * Usage metering and monthly quotas on every authenticated route: each admitted
 * request counts `metering.routeCosts[route]` units (default 1) for its key,
 * route and day. A key with a quota is refused past its hard limit (429
 * `quota-exceeded`, counted nothing) and warned past its soft limit.
 */
export const meteringPlugin = fp<{ services: Services }>(
  async (app, { services }) => {
    const { meter, clock } = services;
    const costs = configuredRoutes(services.config.metering.routeCosts);

    function settle(reply: FastifyReply, admission: Admission | null): void {
      if (admission === null) return;
      quotaHeaders(reply, admission);
      if (!admission.allowed) {
        const retryAfter = Math.max(1, Math.ceil((admission.resetsAt.getTime() - clock().getTime()) / 1000));
        throw new Problem('quota-exceeded', {
          detail: `this key has used ${admission.used} of its ${admission.limit} units this month`,
          headers: { 'retry-after': String(retryAfter) },
          extensions: { limit: admission.limit, used: admission.used, resetsAt: admission.resetsAt.toISOString() },
        });
      }
      if (admission.warn) reply.header('x-quota-warning', `soft limit reached: ${admission.used} of ${admission.limit} units used this month`);
    }

    app.addHook('onRoute', (route) => {
      if (typeof route.config?.scope !== 'string') return;
      const methods = Array.isArray(route.method) ? route.method : [route.method];
      const hooks: onRequestAsyncHookHandler[] = methods.map((method) => {
        const name = docsRoute(method, route.url);
        const units = costs.lookup(method, route.url) ?? route.config?.proxy?.cost ?? 1;
        return async (request, reply) => {
          if (request.method !== method || !request.auth) return;
          const admitted = meter.admit(request.auth.key, name, units);
          settle(reply, admitted instanceof Promise ? await admitted : admitted);
        };
      });
      route.onRequest = [...hookArray(route.onRequest), ...hooks];
    });

    app.addHook('onReady', async () => {
      const unknown = costs.unknown();
      if (unknown.length > 0) throw new Error(`metering.routeCosts names routes that do not exist: ${unknown.join(', ')}`);
    });
  },
  { name: 'portcullis-metering', fastify: '5.x', dependencies: ['portcullis-auth', 'portcullis-rate-limit'] },
);
