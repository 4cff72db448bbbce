// The part every Fastify baseline shares with the real app (src/http/app.ts,
// src/http/plugins/observe.ts): the same Fastify options, logger, request-id header
// and one log line per request. Plain JavaScript over the compiled dist/, like the
// subject (the published bin): a .ts file would load Node's type stripper, ~28 MB of
// RSS the subject does not pay.
import Fastify, { LogController } from 'fastify';
import { loadConfig } from '../../dist/src/config/load.js';
import { ID_PREFIX, newId } from '../../dist/src/core/ids.js';
import { REQUEST_ID_HEADER } from '../../dist/src/http/app.js';
import { createLogger } from '../../dist/src/server/logger.js';

export function baselineApp() {
  // Defaults only, like the subject started with no config file.
  const config = loadConfig({ env: {} });
  const app = Fastify({
    loggerInstance: createLogger('info'),
    logController: new LogController({ disableRequestLogging: true, requestIdLogLabel: 'requestId' }),
    genReqId: () => newId(ID_PREFIX.request),
    requestIdHeader: false,
    bodyLimit: config.bodyLimit,
    forceCloseConnections: 'idle',
    return503OnClosing: true,
  });
  app.addHook('onRequest', async (request, reply) => {
    reply.header(REQUEST_ID_HEADER, request.id);
  });
  app.addHook('onResponse', async (request, reply) => {
    request.log.info(
      {
        method: request.method,
        route: request.routeOptions.url ?? 'unmatched',
        path: request.url.split('?')[0],
        status: reply.statusCode,
        durationMs: Math.round(reply.elapsedTime * 100) / 100,
        keyId: undefined,
      },
      'request',
    );
  });
  app.get('/healthz', async () => ({ status: 'ok' }));
  return app;
}

/** Listens on loopback `port` and exits cleanly on SIGTERM. */
export async function serveBaseline(app, port) {
  await app.listen({ host: '127.0.0.1', port });
  process.once('SIGTERM', () => {
    app.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  });
}
