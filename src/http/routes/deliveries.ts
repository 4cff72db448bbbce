import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Problem } from '../../core/problems.ts';
import type { DeliveryFilter, DeliveryRecord, DeliveryStatus } from '../../storage/deliveryStore.ts';
import type { Services } from '../services.ts';
import { AUTH_PROBLEMS, BODY_PROBLEMS, IdParams, POST_PROBLEMS, curlExample, problemResponses } from '../schemas/common.ts';
import { BULK_RETRY_DEFAULT, BulkRetryBody, DeliveryDetail, DeliveryList, DeliveryQuery, RetryResult } from '../schemas/deliveries.ts';

const EXAMPLE_ID = 'dlv_01jdx3m5a8q2v7k4r9t6w1y3zb';

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
      description: 'Queues the delivery again now, with a fresh retry schedule (a dead one, or any other not being sent right now). 409 while it is being sent, or when its endpoint was deleted.' + curlExample('POST', `/v1/deliveries/${EXAMPLE_ID}/retry`),
      params: IdParams,
      response: { 202: RetryResult, ...problemResponses(...AUTH_PROBLEMS, ...POST_PROBLEMS, 'not-found', 'conflict') },
    },
    handler: async (request, reply) => {
      const delivery = await store.deliveries.get(request.params.id);
      if (!delivery) throw new Problem('not-found', { detail: `no delivery ${request.params.id}` });
      const retried = await store.deliveries.retry({ ...filterOf({}), ids: [delivery.id] }, 1, clock());
      if (retried === 0) {
        const current = await store.deliveries.get(delivery.id);
        throw new Problem('conflict', { detail: current?.status === 'sending' ? 'the delivery is being sent right now' : 'its endpoint was deleted' });
      }
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
      description: 'Queues every delivery the filter matches again, oldest first, up to `limit`: dead ones unless `status` names another (a succeeded delivery is sent again only when asked for). At least one filter is required. Deliveries of deleted endpoints are left as they are.' + curlExample('POST', '/v1/deliveries/retry', { status: 'dead', endpoint: 'ep_01jdx3m5a8q2v7k4r9t6w1y3zb' }),
      body: BulkRetryBody,
      response: { 202: RetryResult, ...problemResponses(...AUTH_PROBLEMS, ...BODY_PROBLEMS, ...POST_PROBLEMS) },
    },
    handler: async (request, reply) => {
      const b = request.body;
      if (Object.keys(b).every((k) => k === 'limit')) throw new Problem('validation-failed', { detail: 'give at least one filter (endpoint, subject, status, from, to)' });
      // Dead ones unless the filter names a status: a delivery that succeeded goes again only when asked for.
      const retried = await store.deliveries.retry({ ...filterOf({ ...b, status: b.status ?? 'dead' }), ids: null }, b.limit ?? BULK_RETRY_DEFAULT, clock());
      request.log.info({ event: 'deliveries.retried', filter: b, retried }, 'deliveries retried');
      services.newDeliveries.notify();
      return reply.code(202).send({ retried });
    },
  });
}
