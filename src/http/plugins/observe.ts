import fp from 'fastify-plugin';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { redactApiKeys } from '../../core/apiKeys.ts';
import type { Services } from '../services.ts';

/**
 * One log line and one metrics sample per answered request. The line carries the
 * request id, the key id (never the key), the route template and the path without
 * its query string and with key-shaped segments redacted — so a key sent in a URL
 * by mistake never reaches the log. Also called for requests the router refuses
 * before any hook runs.
 */
export function observeRequest(services: Services, request: FastifyRequest, reply: FastifyReply): void {
  const route = request.routeOptions.url ?? 'unmatched';
  const status = reply.statusCode;
  const series = services.metrics.httpSeries(request.method, route, status);
  series.requests.inc();
  series.duration.observe(reply.elapsedTime / 1000);
  request.log.info(
    {
      method: request.method,
      route,
      path: redactApiKeys(request.url.split('?')[0]!),
      status,
      durationMs: Math.round(reply.elapsedTime * 100) / 100,
      keyId: request.auth?.keyId,
    },
    'request',
  );
}

export const observePlugin = fp<{ services: Services }>(
  async (app, { services }) => {
    app.addHook('onResponse', (request, reply, done) => {
      try {
        observeRequest(services, request, reply);
        done();
      } catch (err) {
        done(err as Error);
      }
    });
  },
  { name: 'portcullis-observe', fastify: '5.x', dependencies: ['portcullis-auth'] },
);
