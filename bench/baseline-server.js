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
import { baselineApp, serveBaseline } from './lib/baselineApp.js';

const port = Number(process.env.BENCH_PORT);
const bodyFile = process.env.BENCH_BODY_FILE;
if (!Number.isInteger(port) || !bodyFile) throw new Error('set BENCH_PORT and BENCH_BODY_FILE');
const body = JSON.parse(readFileSync(bodyFile, 'utf8'));

const app = baselineApp();
app.get('/v1/keys/:id', async () => body);
await serveBaseline(app, port);
