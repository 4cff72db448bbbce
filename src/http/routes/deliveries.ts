import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { ID_PREFIX, newId } from '../../core/ids.ts';
import { Problem } from '../../core/problems.ts';
import { sendAttempt } from '../../delivery/attempt.ts';
import { signingSecrets } from '../../delivery/dispatcher.ts';
import { openSecret } from '../../core/secretBox.ts';
import type { DeliveryFilter, DeliveryRecord, DeliveryStatus } from '../../storage/deliveryStore.ts';
import type { Services } from '../services.ts';
import { AUTH_PROBLEMS, BODY_PROBLEMS, IdParams, POST_PROBLEMS, curlExample, problemResponses } from '../schemas/common.ts';
import { Attempt, BulkRetryBody, DeliveryDetail, DeliveryList, DeliveryQuery, RecoverBody, RetryResult } from '../schemas/deliveries.ts';

const EXAMPLE_ID = 'dlv_01jdx3m5a8q2v7k4r9t6w1y3zb';
const BULK_DEFAULT = 1000;

function present(d: DeliveryRecord) {
  return {
    id: d.id,
    endpointId: d.endpointId,
    subjectKind: d.subjectKind,
    subjectId: d.subjectId,
    eventType: d.eventType,
    status: d.status,
    attempts: d.attempts,
    nextAttemptAt: d.nextAttemptAt?.toISOString() ?? null,
    lastError: d.lastError,
    createdAt: d.createdAt.toISOString(),
    updatedAt: d.updatedAt.toISOString(),
  };
}

function filterOf(q: { endpoint?: string; subject?: string; status?: string; from?: string; to?: string }): DeliveryFilter {
  return {
    endpointId: q.endpoint ?? null,
    subjectId: q.subject ?? null,
    status: (q.status as DeliveryStatus | undefined) ?? null,
    from: q.from ? new Date(q.from) : null,
    to: q.to ? new Date(q.to) : null,
  };
}

/** `/v1/deliveries`: each message or event on its way to each endpoint, with every attempt; retry and recovery. */
export function registerDeliveryRoutes(app: FastifyInstance, services: Services): void {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();
  const { store, clock } = services;

  r.get('/v1/deliveries', {
    config: { scope: 'deliveries:read' },
    schema: {
      operationId: 'listDeliveries',
      tags: ['deliveries'],
      summary: 'List deliveries',
      description: 'Deliveries in creation order, filtered by endpoint, subject (message or event id), status and time.' + curlExample('GET', '/v1/deliveries?status=dead'),
      querystring: DeliveryQuery,
      response: { 200: DeliveryList, ...problemResponses(...AUTH_PROBLEMS, 'validation-failed', 'invalid-cursor') },
    },
    handler: async (request) => {
      const page = await store.deliveries.list(filterOf(request.query), { limit: request.query.limit, cursor: request.query.cursor ?? null });
      return { data: page.data.map(present), nextCursor: page.nextCursor };
    },
  });

  r.get('/v1/deliveries/:id', {
    config: { scope: 'deliveries:read' },
    schema: {
      operationId: 'getDelivery',
      tags: ['deliveries'],
      summary: 'Get a delivery',
      description: 'One delivery with every attempt: time, status code, latency, the first few KB of the answer, error.' + curlExample('GET', `/v1/deliveries/${EXAMPLE_ID}`),
      params: IdParams,
      response: { 200: DeliveryDetail, ...problemResponses(...AUTH_PROBLEMS, 'not-found') },
    },
    handler: async (request) => {
      const delivery = await store.deliveries.get(request.params.id);
      if (!delivery) throw new Problem('not-found', { detail: `no delivery ${request.params.id}` });
      const history = await store.deliveries.attempts(delivery.id);
      return { ...present(delivery), history: history.map((a) => ({ ...a, startedAt: a.startedAt.toISOString(), finishedAt: a.finishedAt.toISOString() })) };
    },
  });

  r.post('/v1/deliveries/:id/retry', {
    config: { scope: 'deliveries:write' },
    schema: {
      operationId: 'retryDelivery',
      tags: ['deliveries'],
      summary: 'Retry a delivery',
      description: 'Queues the delivery again now, with a fresh retry schedule (a dead one, or any other not being sent right now).' + curlExample('POST', `/v1/deliveries/${EXAMPLE_ID}/retry`),
      params: IdParams,
      response: { 202: RetryResult, ...problemResponses(...AUTH_PROBLEMS, ...POST_PROBLEMS, 'not-found', 'conflict') },
    },
    handler: async (request, reply) => {
      const delivery = await store.deliveries.get(request.params.id);
      if (!delivery) throw new Problem('not-found', { detail: `no delivery ${request.params.id}` });
      const retried = await store.deliveries.retry({ ...filterOf({}), ids: [delivery.id] }, 1, clock());
      if (retried === 0) throw new Problem('conflict', { detail: 'the delivery is being sent right now' });
      request.log.info({ event: 'delivery.retried', deliveryId: delivery.id }, 'delivery retried');
      services.newDeliveries.notify();
      return reply.code(202).send({ retried });
    },
  });

  r.post('/v1/deliveries/retry', {
    config: { scope: 'deliveries:write' },
    schema: {
      operationId: 'retryDeliveries',
      tags: ['deliveries'],
      summary: 'Retry deliveries by filter',
      description: 'Queues every delivery the filter matches again, oldest first, up to `limit`. At least one filter is required.' + curlExample('POST', '/v1/deliveries/retry', { status: 'dead', endpoint: 'ep_01jdx3m5a8q2v7k4r9t6w1y3zb' }),
      body: BulkRetryBody,
      response: { 202: RetryResult, ...problemResponses(...AUTH_PROBLEMS, ...BODY_PROBLEMS, ...POST_PROBLEMS) },
    },
    handler: async (request, reply) => {
      const b = request.body;
      if (Object.keys(b).every((k) => k === 'limit')) throw new Problem('validation-failed', { detail: 'give at least one filter (endpoint, subject, status, from, to)' });
      const retried = await store.deliveries.retry({ ...filterOf(b), ids: null }, b.limit ?? BULK_DEFAULT, clock());
      request.log.info({ event: 'deliveries.retried', filter: b, retried }, 'deliveries retried');
      services.newDeliveries.notify();
      return reply.code(202).send({ retried });
    },
  });

  // On the endpoint's path, as its users look for it there; it acts on deliveries.
  r.post('/v1/endpoints/:id/recover', {
    config: { scope: 'endpoints:write' },
    schema: {
      operationId: 'recoverEndpoint',
      tags: ['endpoints'],
      summary: 'Recover failed deliveries',
      description: 'Re-sends every dead delivery of the endpoint created since the given time (after an outage on its side).' + curlExample('POST', '/v1/endpoints/ep_01jdx3m5a8q2v7k4r9t6w1y3zb/recover', { since: '2026-11-28T00:00:00Z' }),
      params: IdParams,
      body: RecoverBody,
      response: { 202: RetryResult, ...problemResponses(...AUTH_PROBLEMS, ...BODY_PROBLEMS, ...POST_PROBLEMS, 'not-found') },
    },
    handler: async (request, reply) => {
      const endpoint = await store.endpoints.get(request.params.id);
      if (!endpoint) throw new Problem('not-found', { detail: `no endpoint ${request.params.id}` });
      const filter = { endpointId: endpoint.id, subjectId: null, status: 'dead' as const, from: new Date(request.body.since), to: null, ids: null };
      const retried = await store.deliveries.retry(filter, request.body.limit ?? BULK_DEFAULT, clock());
      request.log.info({ event: 'endpoint.recovered', endpointId: endpoint.id, since: request.body.since, retried }, 'endpoint recovery queued');
      services.newDeliveries.notify();
      return reply.code(202).send({ retried });
    },
  });

  r.post('/v1/endpoints/:id/test', {
    config: { scope: 'endpoints:write' },
    schema: {
      operationId: 'testEndpoint',
      tags: ['endpoints'],
      summary: 'Send a test event',
      description:
        'Sends a signed `portcullis.endpoint.test` message to this endpoint only, at once, and answers with the attempt (status code, latency, the start of the answer, error). The message is stored; the attempt is not retried.' +
        curlExample('POST', '/v1/endpoints/ep_01jdx3m5a8q2v7k4r9t6w1y3zb/test'),
      params: IdParams,
      response: { 200: Attempt, ...problemResponses(...AUTH_PROBLEMS, ...POST_PROBLEMS, 'not-found') },
    },
    handler: async (request) => {
      const endpoint = await store.endpoints.get(request.params.id);
      if (!endpoint) throw new Problem('not-found', { detail: `no endpoint ${request.params.id}` });
      const now = clock();
      const id = newId(ID_PREFIX.message);
      const payload = Buffer.from(JSON.stringify({ type: 'portcullis.endpoint.test', timestamp: now.toISOString(), data: { endpointId: endpoint.id } }));
      await store.messages.create({ id, eventType: 'portcullis.endpoint.test', payload, createdAt: now }, []);
      const res = await sendAttempt(services.outbound, {
        url: endpoint.url,
        secrets: signingSecrets(endpoint, (sealed) => openSecret(services.secretsKey, sealed, endpoint.id), now),
        webhookId: id,
        eventType: 'portcullis.endpoint.test',
        sourceId: null,
        body: payload,
        contentType: 'application/json',
        eventHeaders: {},
        endpointHeaders: endpoint.headers,
        timeoutMs: endpoint.timeoutMs,
        responseBodyMaxBytes: services.config.delivery.responseBodyMaxBytes,
        now,
      });
      request.log.info({ event: 'endpoint.tested', endpointId: endpoint.id, statusCode: res.statusCode }, 'endpoint tested');
      return {
        attempt: 1,
        startedAt: now.toISOString(),
        finishedAt: clock().toISOString(),
        statusCode: res.statusCode,
        latencyMs: res.latencyMs,
        responseBody: res.responseBody,
        error: res.error,
        outcome: res.ok ? 'succeeded' : 'dead',
      };
    },
  });
}
