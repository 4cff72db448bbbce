// The baseline for the keys-get bench: a bare Fastify handler with the same
// Fastify options, the same pino logger and the same one-line-per-request log as
// the real app (src/http/app.ts, src/http/plugins/observe.ts), returning a fixed
// JSON body — the one the real server returned for the same GET. What it leaves
// out is what the bench measures: key verification, the scope check, the store
// read, response-schema serialisation, metrics and the other plugins' hooks.
//
// Plain JavaScript over the compiled dist/, like the subject (the published bin):
// running a .ts file loads Node's type stripper, ~28 MB of RSS the subject does not pay.
//
// Env: BENCH_PORT (required), BENCH_BODY_FILE (the JSON body to return).
import { readFileSync } from 'node:fs';
import Fastify, { LogController } from 'fastify';
import { loadConfig } from '../dist/src/config/load.js';
import { ID_PREFIX, newId } from '../dist/src/core/ids.js';
import { REQUEST_ID_HEADER } from '../dist/src/http/app.js';
import { createLogger } from '../dist/src/server/logger.js';

const port = Number(process.env.BENCH_PORT);
const bodyFile = process.env.BENCH_BODY_FILE;
if (!Number.isInteger(port) || !bodyFile) throw new Error('set BENCH_PORT and BENCH_BODY_FILE');
const body = JSON.parse(readFileSync(bodyFile, 'utf8'));

// Defaults only, like the subject started with no config file.
const config = loadConfig({ env: {} });
const logger = createLogger('info');
const app = Fastify({
  loggerInstance: logger,
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
app.get('/v1/keys/:id', async () => body);
app.get('/healthz', async () => ({ status: 'ok' }));

await app.listen({ host: '127.0.0.1', port });
process.once('SIGTERM', () => {
  app.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
});
