import { TextDecoder } from 'node:util';
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { ID_PREFIX, newId } from '../../core/ids.ts';
import { Problem } from '../../core/problems.ts';
import type { EventRecord, EventStatus } from '../../storage/store.ts';
import type { Services } from '../services.ts';
import { AUTH_PROBLEMS, BODY_PROBLEMS, IdParams, POST_PROBLEMS, curlExample, problemResponses } from '../schemas/common.ts';
import { BulkReplayBody, BulkReplayResult, EventDetail, EventList, EventQuery, ReplayResult } from '../schemas/events.ts';

const EXAMPLE_ID = 'evt_01jdx3m5a8q2v7k4r9t6w1y3zb';
const utf8 = new TextDecoder('utf-8', { fatal: true });

export function summary(e: EventRecord) {
  return { id: e.id, sourceId: e.sourceId, type: e.type, deliveryId: e.deliveryId, receivedAt: e.receivedAt.toISOString(), status: e.status };
}

export function asText(body: Buffer): string | null {
  try {
    return utf8.decode(body);
  } catch {
    return null;
  }
}

/** `/v1/events`: what came in, where it is in processing, and replay. */
export function registerEventRoutes(app: FastifyInstance, services: Services): void {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();
  const { store, clock } = services;

  r.get('/v1/events', {
    config: { scope: 'events:read' },
    schema: {
      operationId: 'listEvents',
      tags: ['events'],
      summary: 'List events',
      description: 'Inbound events in arrival order, filtered by source, type (exact or `prefix.*`), status and time.' + curlExample('GET', '/v1/events?status=dead&type=github.*'),
      querystring: EventQuery,
      response: { 200: EventList, ...problemResponses(...AUTH_PROBLEMS, 'validation-failed', 'invalid-cursor') },
    },
    handler: async (request) => {
      const q = request.query;
      const page = await store.events.list(
        {
          sourceId: q.source ?? null,
          type: q.type ?? null,
          status: (q.status as EventStatus | undefined) ?? null,
          from: q.from ? new Date(q.from) : null,
          to: q.to ? new Date(q.to) : null,
        },
        { limit: q.limit, cursor: q.cursor ?? null },
      );
      return { data: page.data.map(summary), nextCursor: page.nextCursor };
    },
  });

  r.get('/v1/events/:id', {
    config: { scope: 'events:read' },
    schema: {
      operationId: 'getEvent',
      tags: ['events'],
      summary: 'Get an event',
      description: 'One event with its raw body, kept headers and processing history.' + curlExample('GET', `/v1/events/${EXAMPLE_ID}`),
      params: IdParams,
      response: { 200: EventDetail, ...problemResponses(...AUTH_PROBLEMS, 'not-found') },
    },
    handler: async (request) => {
      const event = await store.events.get(request.params.id);
      if (!event) throw new Problem('not-found', { detail: `no event ${request.params.id}` });
      const jobs = await store.events.history(event.id);
      return {
        ...summary(event),
        headers: event.headers,
        body: event.body ? event.body.toString('base64') : null,
        bodyText: event.body ? asText(event.body) : null,
        jobs: jobs.map((j) => ({
          id: j.id,
          kind: j.kind,
          status: j.status,
          runAt: j.runAt.toISOString(),
          lastError: j.lastError,
          createdAt: j.createdAt.toISOString(),
          attempts: j.attempts.map((a) => ({ ...a, startedAt: a.startedAt.toISOString(), finishedAt: a.finishedAt.toISOString() })),
        })),
      };
    },
  });

  r.post('/v1/events/replay', {
    config: { scope: 'events:write' },
    schema: {
      operationId: 'replayEvents',
      tags: ['events'],
      summary: 'Replay events by filter',
      description: 'Queues every event the filter matches for processing again, oldest first, up to `limit`. At least one filter is required.' + curlExample('POST', '/v1/events/replay', { status: 'dead', type: 'github.*' }),
      body: BulkReplayBody,
      response: { 202: BulkReplayResult, ...problemResponses(...AUTH_PROBLEMS, ...BODY_PROBLEMS, ...POST_PROBLEMS) },
    },
    handler: async (request, reply) => {
      const b = request.body;
      if (Object.keys(b).every((k) => k === 'limit')) throw new Problem('validation-failed', { detail: 'give at least one filter (source, type, status, from, to)' });
      const replayed = await store.events.replayMatching(
        { sourceId: b.source ?? null, type: b.type ?? null, status: (b.status as EventStatus | undefined) ?? null, from: b.from ? new Date(b.from) : null, to: b.to ? new Date(b.to) : null },
        b.limit ?? 1000,
        () => newId(ID_PREFIX.job),
        clock(),
      );
      request.log.info({ event: 'events.replayed', filter: b, replayed }, 'events replayed');
      if (replayed > 0) services.newJobs.notify();
      return reply.code(202).send({ replayed });
    },
  });

  r.post('/v1/events/:id/replay', {
    config: { scope: 'events:write' },
    schema: {
      operationId: 'replayEvent',
      tags: ['events'],
      summary: 'Replay an event',
      description: 'Queues the event for processing again (a dead-lettered one, or any other). Processing is at-least-once: steps see the same event id.' + curlExample('POST', `/v1/events/${EXAMPLE_ID}/replay`),
      params: IdParams,
      response: { 202: ReplayResult, ...problemResponses(...AUTH_PROBLEMS, ...POST_PROBLEMS, 'not-found') },
    },
    handler: async (request, reply) => {
      const jobId = newId(ID_PREFIX.job);
      if (!(await store.events.replay(request.params.id, jobId, clock()))) throw new Problem('not-found', { detail: `no event ${request.params.id}` });
      request.log.info({ event: 'event.replayed', eventId: request.params.id, jobId }, 'event replayed');
      services.newJobs.notify();
      return reply.code(202).send({ eventId: request.params.id, jobId });
    },
  });
}
