// The baseline for the ingest bench: a bare Fastify POST handler with the same
// Fastify options, the same pino logger and the same one-line-per-request log as
// the real app (like bench/baseline-server.js), taking the body as a raw stream
// the way `POST /in/{source}` does, reading all of it and answering 200 with a
// body shaped like the real answer. What it leaves out is what the bench
// measures: the source lookup, signature verification, dedup, the durable commit
// of the event and its job, metrics and the "delivery received" log line.
//
// Plain JavaScript over the compiled dist/, like the subject (the published bin).
//
// Env: BENCH_PORT (required).
import Fastify, { LogController } from 'fastify';
import { loadConfig } from '../dist/src/config/load.js';
import { ID_PREFIX, newId } from '../dist/src/core/ids.js';
import { REQUEST_ID_HEADER } from '../dist/src/http/app.js';
import { createLogger } from '../dist/src/server/logger.js';

const port = Number(process.env.BENCH_PORT);
if (!Number.isInteger(port)) throw new Error('set BENCH_PORT');

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
app.get('/healthz', async () => ({ status: 'ok' }));

await app.register(async (inbound) => {
  inbound.removeAllContentTypeParsers();
  inbound.addContentTypeParser('*', (_request, payload, done) => done(null, payload));
  inbound.post('/in/:source', async (request) => {
    // Held whole in memory, as the real route holds it to verify and store it.
    const chunks = [];
    for await (const chunk of request.body) chunks.push(chunk);
    Buffer.concat(chunks);
    return { eventId: newId(ID_PREFIX.event), duplicate: false };
  });
});

await app.listen({ host: '127.0.0.1', port });
process.once('SIGTERM', () => {
  app.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
});
