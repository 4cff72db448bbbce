import fp from 'fastify-plugin';
import type { Services } from '../services.ts';

/**
 * One log line and one metrics sample per request. The line carries the request
 * id, the key id (never the key), the route template and the path without its
 * query string — so a secret in a URL never reaches the log.
 */
export const observePlugin = fp<{ services: Services }>(
  async (app, { services }) => {
    app.addHook('onResponse', async (request, reply) => {
      const route = request.routeOptions.url ?? 'unmatched';
      const status = reply.statusCode;
      const seconds = reply.elapsedTime / 1000;
      const labels = { method: request.method, route, status: String(status) };
      services.metrics.httpRequests.inc(labels);
      services.metrics.httpDuration.observe(labels, seconds);
      request.log.info(
        {
          method: request.method,
          route,
          path: request.url.split('?')[0],
          status,
          durationMs: Math.round(reply.elapsedTime * 100) / 100,
          keyId: request.auth?.keyId,
        },
        'request',
      );
    });
  },
  { name: 'portcullis-observe', fastify: '5.x', dependencies: ['portcullis-auth'] },
);
