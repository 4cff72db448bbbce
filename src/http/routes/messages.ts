import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Problem } from '../../core/problems.ts';
import type { MessageRecord } from '../../storage/deliveryStore.ts';
import type { Services } from '../services.ts';
import { AUTH_PROBLEMS, BODY_PROBLEMS, IdParams, POST_PROBLEMS, curlExample, problemResponses } from '../schemas/common.ts';
import { CreateMessageBody, CreatedMessage, MessageDetail, MessageList, MessageQuery } from '../schemas/messages.ts';

const EXAMPLE_ID = 'msg_01jdx3m5a8q2v7k4r9t6w1y3zb';

const summary = (m: MessageRecord) => ({ id: m.id, eventType: m.eventType, createdAt: m.createdAt.toISOString() });

/** `/v1/messages`: our users' own events, published to the endpoints subscribed to their type (the outbox). */
export function registerMessageRoutes(app: FastifyInstance, services: Services): void {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();
  const { store, clock } = services;

  r.post('/v1/messages', {
    // The payload is stored as bytes: U+0000 in its strings is kept as sent.
    config: { scope: 'messages:write', nulAllowedIn: ['payload'] },
    schema: {
      operationId: 'createMessage',
      tags: ['messages'],
      summary: 'Publish a message',
      description:
        'Stores the message and one delivery per enabled endpoint subscribed to its type, in one transaction, then delivers them signed (Standard Webhooks). With `Idempotency-Key`, a repeat returns the same message.' +
        curlExample('POST', '/v1/messages', { eventType: 'invoice.paid', payload: { invoiceId: 'in_123', amount: 4200 } }),
      body: CreateMessageBody,
      response: { 202: CreatedMessage, ...problemResponses(...AUTH_PROBLEMS, ...BODY_PROBLEMS, ...POST_PROBLEMS) },
    },
    handler: async (request, reply) => {
      const now = clock();
      const { eventType } = request.body;
      const message = await services.router.prepare(eventType, Buffer.from(JSON.stringify(request.body.payload)), now);
      const { id } = message.message;
      const body = { id, eventType, createdAt: now.toISOString(), deliveries: message.deliveries.length };
      const headers = { 'content-type': 'application/json; charset=utf-8', location: `/v1/messages/${id}` };
      // An Idempotency-Key's outcome is stored with the message: a repeat finds it even if
      // this process dies before answering.
      const scope = request.idempotency;
      await store.messages.create(message.message, message.deliveries, scope ? { scope, response: { statusCode: 202, headers, body: JSON.stringify(body) } } : undefined);
      request.idempotency = null;
      services.router.queued(message);
      request.log.info({ event: 'message.created', messageId: id, eventType, deliveries: body.deliveries }, 'message published');
      return reply.code(202).headers(headers).send(body);
    },
  });

  r.get('/v1/messages', {
    config: { scope: 'messages:read' },
    schema: {
      operationId: 'listMessages',
      tags: ['messages'],
      summary: 'List messages',
      description: 'Published messages in creation order, filtered by type (exact or `prefix.*`).' + curlExample('GET', '/v1/messages?eventType=invoice.*'),
      querystring: MessageQuery,
      response: { 200: MessageList, ...problemResponses(...AUTH_PROBLEMS, 'validation-failed', 'invalid-cursor') },
    },
    handler: async (request) => {
      const page = await store.messages.list({ eventType: request.query.eventType ?? null }, { limit: request.query.limit, cursor: request.query.cursor ?? null });
      return { data: page.data.map(summary), nextCursor: page.nextCursor };
    },
  });

  r.get('/v1/messages/:id', {
    config: { scope: 'messages:read' },
    schema: {
      operationId: 'getMessage',
      tags: ['messages'],
      summary: 'Get a message',
      description: 'One message with its payload; its deliveries are at `GET /v1/deliveries?subject=<id>`.' + curlExample('GET', `/v1/messages/${EXAMPLE_ID}`),
      params: IdParams,
      response: { 200: MessageDetail, ...problemResponses(...AUTH_PROBLEMS, 'not-found') },
    },
    handler: async (request) => {
      const message = await store.messages.get(request.params.id);
      if (!message) throw new Problem('not-found', { detail: `no message ${request.params.id}` });
      return { ...summary(message), payload: JSON.parse(message.payload.toString('utf8')) as unknown };
    },
  });
}
