import type { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { ID_PREFIX, newId } from '../../core/ids.ts';
import { Problem } from '../../core/problems.ts';
import { eventType } from '../../ingest/eventType.ts';
import { verifierFor } from '../../ingest/verify/index.ts';
import type { GenericHmacOptions, SourceType } from '../../ingest/verify/index.ts';
import type { ReceivingSource } from '../../ingest/sourceCache.ts';
import { sourceIdentity } from '../../ratelimit/rateLimits.ts';
import { applyOutcome } from '../plugins/rateLimit.ts';
import type { Services } from '../services.ts';
import { problemResponses } from '../schemas/common.ts';

/** Headers never kept with an event: credentials (Hugging Face sends its secret as a header) and hop-by-hop ones. */
const NOT_KEPT = new Set(['authorization', 'cookie', 'proxy-authorization', 'x-webhook-secret', 'connection', 'keep-alive', 'transfer-encoding', 'te', 'upgrade', 'host']);
/** The job every event gets: processing (routing, transformations and deliveries plug in as its steps). */
export const PROCESS_JOB = 'process';

/** Reads a body up to `limit` bytes; null as soon as it goes past (the rest is never held in memory). */
function readLimited(stream: Readable, limit: number): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) {
        stream.off('data', onData);
        stream.pause();
        resolve(null);
        return;
      }
      chunks.push(chunk);
    };
    stream.on('data', onData);
    stream.once('end', () => resolve(Buffer.concat(chunks, size)));
    stream.once('error', reject);
  });
}

function secretsOf(source: ReceivingSource, now: Date): string[] {
  const expires = source.record.previousSecretExpiresAt;
  return source.previousSecret !== null && expires !== null && expires > now ? [source.secret, source.previousSecret] : [source.secret];
}

/**
 * `POST /in/{source}`: a provider's delivery, verified over the exact bytes
 * received, deduplicated, and committed durably with its processing job before
 * the 2xx. A duplicate within the source's window gets the same answer and is
 * not stored again. Providers see 401 for bad signatures, 413 over the limit,
 * 404 for an unknown source, 429 over the source's rate limit (reject mode) and
 * 503 when the store is down (so they retry).
 */
export async function registerInboundRoutes(app: FastifyInstance, services: Services): Promise<void> {
  const { store, metrics, clock, rateLimits } = services;

  await app.register(async (inbound) => {
    // Any content type, as a stream: the source's own limit applies while reading.
    inbound.removeAllContentTypeParsers();
    inbound.addContentTypeParser('*', (_request, payload, done) => done(null, payload));

    inbound.post('/in/:source', {
      config: { scope: false },
      schema: {
        operationId: 'receiveWebhook',
        tags: ['inbound'],
        summary: 'Receive a webhook delivery',
        description:
          "The URL a provider delivers to (`/in/<slug or id>`). No API key: the provider's own signature is verified with the source's secret. Answers `{eventId, duplicate}` once the event is durably stored.",
        params: Type.Object({ source: Type.String({ minLength: 1, maxLength: 100 }) }),
        response: {
          200: Type.Object({ eventId: Type.String(), duplicate: Type.Boolean() }, { additionalProperties: false }),
          ...problemResponses('not-found', 'signature-invalid', 'malformed-request', 'payload-too-large', 'rate-limited', 'rate-limiter-unavailable', 'store-unavailable'),
        },
      },
      handler: async (request: FastifyRequest<{ Params: { source: string } }>, reply: FastifyReply) => {
        const started = performance.now();
        const receiving = await services.sourceCache.get(request.params.source);
        if (!receiving) throw new Problem('not-found', { detail: `no source ${request.params.source}` });
        const source = receiving.record;
        const tooLarge = (): Problem => {
          metrics.webhooksRejected.inc({ source: source.id, reason: 'too-large' });
          // The rest of the body is not read: close the connection after the answer.
          reply.header('connection', 'close');
          return new Problem('payload-too-large', { detail: `this source accepts at most ${source.bodyLimit} bytes` });
        };
        if (Number(request.headers['content-length']) > source.bodyLimit) throw tooLarge();
        const body = request.body ? await readLimited(request.body as Readable, source.bodyLimit) : Buffer.alloc(0);
        if (body === null) throw tooLarge();

        const generic = (source.generic ?? undefined) as GenericHmacOptions | undefined;
        const headers: Record<string, string> = {};
        for (const [name, value] of Object.entries(request.headers)) if (value !== undefined && !NOT_KEPT.has(name)) headers[name] = Array.isArray(value) ? value.join(', ') : value;
        const verify = verifierFor(source.type as SourceType, generic);
        const now = clock();
        const verdict = verify({ headers: { ...headers, 'x-webhook-secret': request.headers['x-webhook-secret'] as string | undefined }, body }, { secrets: secretsOf(receiving, now), now });
        // A generic source's signature, whatever its header's name, is kept neither with the event nor forwarded.
        if (generic) delete headers[generic.signatureHeader];
        if (!verdict.ok) {
          metrics.webhooksRejected.inc({ source: source.id, reason: verdict.reason });
          request.log.info({ sourceId: source.id, reason: verdict.reason }, 'delivery refused');
          if (verdict.reason === 'malformed-body') throw new Problem('malformed-request', { detail: verdict.detail });
          throw new Problem('signature-invalid', { detail: verdict.detail, extensions: { reason: verdict.reason } });
        }
        // Slack's url_verification is a handshake, not an event: answered, not stored.
        if (verdict.reply) return reply.type(verdict.reply.contentType).send(verdict.reply.body);
        const type = eventType(source.type as SourceType, verdict.type);
        // Read from the body by a generic source's paths: PostgreSQL text cannot hold U+0000.
        if ([type, verdict.deliveryId, verdict.dedupKey].some((v) => typeof v === 'string' && v.includes('\u0000'))) {
          throw new Problem('malformed-request', { detail: 'the event type or delivery id read from the body holds U+0000' });
        }

        // Limited only once the signature holds: a flood of unsigned or forged requests to a
        // known URL then cannot spend the provider's budget and get its real deliveries refused.
        // Reading and verifying an over-limit delivery costs little next to that (bodies are bounded).
        // Throttled sources are not refused here: the worker slows their processing instead.
        const policy = source.rateLimitMode === 'reject' ? rateLimits.forSource(source) : undefined;
        if (policy) {
          const checked = rateLimits.check(policy, sourceIdentity(source.id), true, request.log);
          const outcome = checked instanceof Promise ? await checked : checked;
          if (outcome.kind === 'decided' && !outcome.decision.allowed) {
            metrics.webhooksRateLimited.inc({ source: source.id, mode: 'reject' });
            request.log.info({ sourceId: source.id, policy: policy.name }, 'delivery refused: source over its rate limit');
          }
          applyOutcome(request, reply, outcome, clock().getTime());
        }

        const result = await store.events.ingest({
          id: newId(ID_PREFIX.event),
          sourceId: source.id,
          type,
          deliveryId: verdict.deliveryId,
          dedupKey: verdict.dedupKey,
          headers,
          body,
          receivedAt: now,
          dedupUntil: new Date(now.getTime() + source.dedupWindowSeconds * 1000),
          jobs: [{ id: newId(ID_PREFIX.job), kind: PROCESS_JOB }],
        });
        if (!result.duplicate) services.newEvents.notify();
        (result.duplicate ? metrics.webhooksDuplicates : metrics.webhooksReceived).inc({ source: source.id, type });
        metrics.ingestDuration.observe({ source: source.id }, (performance.now() - started) / 1000);
        request.log.info({ sourceId: source.id, eventId: result.eventId, type, duplicate: result.duplicate }, 'delivery received');
        return reply.code(200).send(result);
      },
    });
  });
}
