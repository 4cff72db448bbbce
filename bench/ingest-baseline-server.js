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
import { ID_PREFIX, newId } from '../dist/src/core/ids.js';
import { baselineApp, serveBaseline } from './lib/baselineApp.js';

const port = Number(process.env.BENCH_PORT);
if (!Number.isInteger(port)) throw new Error('set BENCH_PORT');

const app = baselineApp();
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
await serveBaseline(app, port);
