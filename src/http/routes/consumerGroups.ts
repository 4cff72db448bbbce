import { Type } from 'typebox';
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { ID_PREFIX, newId } from '../../core/ids.ts';
import { Problem } from '../../core/problems.ts';
import type { ConsumerGroupRecord, LeasedEvent } from '../../storage/store.ts';
import { NameTakenError } from '../../storage/store.ts';
import type { Services } from '../services.ts';
import { AUTH_PROBLEMS, BODY_PROBLEMS, IdParams, ListQuery, POST_PROBLEMS, curlExample, problemResponses } from '../schemas/common.ts';
import {
  AckBody,
  ConsumerGroup,
  ConsumerGroupDetail,
  ConsumerGroupList,
  CreateConsumerGroupBody,
  LEASE_MAX_BYTES,
  LeaseQuery,
  LeaseResult,
  NackBody,
  SettleResult,
  VISIBILITY_DEFAULT_S,
} from '../schemas/consumerGroups.ts';
import type { ConsumerGroupResponse } from '../schemas/consumerGroups.ts';
import { asText, summary } from './events.ts';

const EXAMPLE = 'billing-sync';
/** A long poll looks again this often even without a wake-up: events stored by other processes, leases running out. */
const LONG_POLL_RECHECK_MS = 500;

function present(group: ConsumerGroupRecord): ConsumerGroupResponse {
  return {
    id: group.id,
    name: group.name,
    sourceId: group.sourceId,
    types: group.types,
    startAt: group.startAt.toISOString(),
    visibilityTimeoutSeconds: group.visibilityTimeoutMs / 1000,
    createdAt: group.createdAt.toISOString(),
  };
}

function presentLeased(l: LeasedEvent) {
  const e = l.event;
  return {
    receipt: l.receipt,
    deliveries: l.deliveries,
    visibleAt: l.visibleAt.toISOString(),
    event: { ...summary(e), headers: e.headers, body: e.body ? e.body.toString('base64') : null, bodyText: e.body ? asText(e.body) : null },
  };
}

/**
 * `/v1/consumer-groups`: applications pulling events over HTTP, as Redis
 * Streams consumer groups do. A lease hides events from the rest of the group
 * until acknowledged or until the visibility timeout; at-least-once.
 */
export function registerConsumerGroupRoutes(app: FastifyInstance, services: Services): void {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();
  const { store, clock, metrics, newEvents } = services;

  // Long polls end at once when the server starts closing, rather than holding the shutdown.
  app.addHook('preClose', (done) => {
    newEvents.close();
    done();
  });

  async function load(idOrName: string): Promise<ConsumerGroupRecord> {
    const group = await store.consumerGroups.find(idOrName);
    if (!group) throw new Problem('not-found', { detail: `no consumer group ${idOrName}` });
    return group;
  }

  r.post('/v1/consumer-groups', {
    config: { scope: 'consumer-groups:write' },
    schema: {
      operationId: 'createConsumerGroup',
      tags: ['consumer-groups'],
      summary: 'Create a consumer group',
      description:
        'A named reader of the event stream, over one source or all, and some event types or all, starting from now, the earliest stored event, or a time.' +
        curlExample('POST', '/v1/consumer-groups', { name: EXAMPLE, types: ['stripe.invoice.*'], start: 'now' }),
      body: CreateConsumerGroupBody,
      response: { 201: ConsumerGroup, ...problemResponses(...AUTH_PROBLEMS, ...BODY_PROBLEMS, ...POST_PROBLEMS, 'conflict') },
    },
    handler: async (request, reply) => {
      const body = request.body;
      const start = body.start === undefined || body.start === 'now' ? 'now' : body.start === 'earliest' ? new Date(0) : new Date(body.start);
      if (start !== 'now' && Number.isNaN(start.getTime())) throw new Problem('validation-failed', { detail: 'body.start must be now, earliest or an RFC 3339 time' });
      if (body.name.startsWith(`${ID_PREFIX.consumerGroup}_`)) throw new Problem('validation-failed', { detail: `body.name must not start with ${ID_PREFIX.consumerGroup}_ (ids do)` });
      if (body.source !== undefined && !(await store.sources.find(body.source))) throw new Problem('validation-failed', { detail: `body.source: no source ${body.source}` });
      try {
        const group = await store.consumerGroups.create({
          id: newId(ID_PREFIX.consumerGroup),
          name: body.name,
          sourceId: body.source ?? null,
          types: body.types ?? [],
          start,
          visibilityTimeoutMs: (body.visibilityTimeoutSeconds ?? VISIBILITY_DEFAULT_S) * 1000,
          now: clock(),
        });
        request.log.info({ event: 'consumer-group.created', groupId: group.id, name: group.name }, 'consumer group created');
        return reply.code(201).header('location', `/v1/consumer-groups/${group.id}`).send(present(group));
      } catch (err) {
        if (err instanceof NameTakenError) throw new Problem('conflict', { detail: `the name ${body.name} is taken by another consumer group` });
        throw err;
      }
    },
  });

  r.get('/v1/consumer-groups', {
    config: { scope: 'consumer-groups:read' },
    schema: {
      operationId: 'listConsumerGroups',
      tags: ['consumer-groups'],
      summary: 'List consumer groups',
      description: 'Consumer groups in creation order, a page at a time.' + curlExample('GET', '/v1/consumer-groups'),
      querystring: ListQuery,
      response: { 200: ConsumerGroupList, ...problemResponses(...AUTH_PROBLEMS, 'validation-failed', 'invalid-cursor') },
    },
    handler: async (request) => {
      const page = await store.consumerGroups.list({ limit: request.query.limit, cursor: request.query.cursor ?? null });
      return { data: page.data.map(present), nextCursor: page.nextCursor };
    },
  });

  r.get('/v1/consumer-groups/:id', {
    config: { scope: 'consumer-groups:read' },
    schema: {
      operationId: 'getConsumerGroup',
      tags: ['consumer-groups'],
      summary: 'Get a consumer group',
      description: 'One group (by id or name) with how many events it has handed out and not had acknowledged.' + curlExample('GET', `/v1/consumer-groups/${EXAMPLE}`),
      params: IdParams,
      response: { 200: ConsumerGroupDetail, ...problemResponses(...AUTH_PROBLEMS, 'not-found') },
    },
    handler: async (request) => {
      const group = await load(request.params.id);
      return { ...present(group), ...(await store.consumerGroups.pending(group.id, clock())) };
    },
  });

  r.delete('/v1/consumer-groups/:id', {
    config: { scope: 'consumer-groups:write' },
    schema: {
      operationId: 'deleteConsumerGroup',
      tags: ['consumer-groups'],
      summary: 'Delete a consumer group',
      description: 'Forgets the group, its position and its unacknowledged events. The events themselves stay.' + curlExample('DELETE', `/v1/consumer-groups/${EXAMPLE}`),
      params: IdParams,
      response: { 204: Type.Null({ description: 'Deleted.' }), ...problemResponses(...AUTH_PROBLEMS, 'not-found') },
    },
    handler: async (request, reply) => {
      const group = await load(request.params.id);
      if (!(await store.consumerGroups.delete(group.id))) throw new Problem('not-found', { detail: `no consumer group ${request.params.id}` });
      request.log.info({ event: 'consumer-group.deleted', groupId: group.id }, 'consumer group deleted');
      return reply.code(204).send(null);
    },
  });

  r.post('/v1/consumer-groups/:id/lease', {
    config: { scope: 'consumer-groups:write' },
    schema: {
      operationId: 'leaseEvents',
      tags: ['consumer-groups'],
      summary: 'Lease events',
      description:
        'Hands out up to `max` events, oldest first: those whose lease ran out or that were nacked, then new ones. Each stays hidden from the group until acknowledged or until its visibility timeout. With `wait`, answers as soon as an event arrives, or empty after `wait` seconds.' +
        curlExample('POST', `/v1/consumer-groups/${EXAMPLE}/lease?max=10&wait=20`),
      params: IdParams,
      querystring: LeaseQuery,
      response: { 200: LeaseResult, ...problemResponses(...AUTH_PROBLEMS, ...POST_PROBLEMS, 'validation-failed', 'not-found') },
    },
    handler: async (request) => {
      const group = await load(request.params.id);
      const q = request.query;
      const deadline = performance.now() + q.wait * 1000;
      // The consumer hung up: stop waiting (anything leased after that comes back after its timeout).
      const gone = new AbortController();
      const onClose = (): void => gone.abort();
      request.raw.once('close', onClose);
      try {
        for (;;) {
          const leased = await store.consumerGroups.lease(group.id, {
            max: q.max,
            maxBytes: LEASE_MAX_BYTES,
            visibilityMs: (q.visibilityTimeout ?? group.visibilityTimeoutMs / 1000) * 1000,
            now: clock(),
          });
          const remaining = deadline - performance.now();
          if (leased.length > 0 || remaining <= 0 || gone.signal.aborted || newEvents.closed) {
            const redelivered = leased.filter((l) => l.deliveries > 1).length;
            if (leased.length > redelivered) metrics.consumerGroupEvents.inc({ group: group.name, action: 'leased' }, leased.length - redelivered);
            if (redelivered > 0) metrics.consumerGroupEvents.inc({ group: group.name, action: 'redelivered' }, redelivered);
            return { data: leased.map(presentLeased) };
          }
          await newEvents.wait(Math.min(remaining, LONG_POLL_RECHECK_MS), gone.signal);
        }
      } finally {
        request.raw.off('close', onClose);
      }
    },
  });

  r.post('/v1/consumer-groups/:id/ack', {
    config: { scope: 'consumer-groups:write' },
    schema: {
      operationId: 'ackEvents',
      tags: ['consumer-groups'],
      summary: 'Acknowledge leased events',
      description:
        'Done with these events: the group never hands them out again. A receipt whose lease ran out and was handed to another consumer is stale and changes nothing.' +
        curlExample('POST', `/v1/consumer-groups/${EXAMPLE}/ack`, { receipts: ['evt_01jdx3m5a8q2v7k4r9t6w1y3zb.k3J9xQ2mV8pL4nR7'] }),
      params: IdParams,
      body: AckBody,
      response: { 200: SettleResult, ...problemResponses(...AUTH_PROBLEMS, ...BODY_PROBLEMS, ...POST_PROBLEMS, 'not-found') },
    },
    handler: async (request) => {
      const group = await load(request.params.id);
      const settled = await store.consumerGroups.ack(group.id, request.body.receipts);
      metrics.consumerGroupEvents.inc({ group: group.name, action: 'acked' }, settled.length);
      return { settled, stale: request.body.receipts.filter((r) => !settled.includes(r)) };
    },
  });

  r.post('/v1/consumer-groups/:id/nack', {
    config: { scope: 'consumer-groups:write' },
    schema: {
      operationId: 'nackEvents',
      tags: ['consumer-groups'],
      summary: 'Release leased events',
      description:
        'Gives the events back to the group, to be handed out again after `delaySeconds` (default at once). Stale receipts change nothing.' +
        curlExample('POST', `/v1/consumer-groups/${EXAMPLE}/nack`, { receipts: ['evt_01jdx3m5a8q2v7k4r9t6w1y3zb.k3J9xQ2mV8pL4nR7'], delaySeconds: 60 }),
      params: IdParams,
      body: NackBody,
      response: { 200: SettleResult, ...problemResponses(...AUTH_PROBLEMS, ...BODY_PROBLEMS, ...POST_PROBLEMS, 'not-found') },
    },
    handler: async (request) => {
      const group = await load(request.params.id);
      const visibleAt = new Date(clock().getTime() + (request.body.delaySeconds ?? 0) * 1000);
      const settled = await store.consumerGroups.nack(group.id, request.body.receipts, visibleAt);
      metrics.consumerGroupEvents.inc({ group: group.name, action: 'nacked' }, settled.length);
      if (settled.length > 0) newEvents.notify();
      return { settled, stale: request.body.receipts.filter((r) => !settled.includes(r)) };
    },
  });
}
