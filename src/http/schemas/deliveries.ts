import { Type } from 'typebox';
import type { Static } from 'typebox';
import { ListQuery, NullableTimestamp, Timestamp } from './common.ts';

/** Deliveries a bulk retry or a recovery queues when no limit is given. */
export const BULK_RETRY_DEFAULT = 1000;

const Status = Type.String({ enum: ['pending', 'sending', 'succeeded', 'dead'], description: '`pending` (an attempt is due or scheduled), `sending`, `succeeded`, or `dead` (out of attempts).' });

export const Delivery = Type.Object(
  {
    id: Type.String({ examples: ['dlv_01jdx3m5a8q2v7k4r9t6w1y3zb'] }),
    endpointId: Type.String(),
    subjectKind: Type.String({ enum: ['message', 'event'], description: 'A published message, or a forwarded inbound event.' }),
    subjectId: Type.String({ description: 'The message or event id: also the `webhook-id` of every attempt.' }),
    eventType: Type.String(),
    status: Status,
    attempts: Type.Integer(),
    nextAttemptAt: NullableTimestamp,
    lastError: Type.Union([Type.String(), Type.Null()]),
    createdAt: Timestamp,
    updatedAt: Timestamp,
  },
  { additionalProperties: false },
);

export const Attempt = Type.Object(
  {
    attempt: Type.Integer(),
    startedAt: Timestamp,
    finishedAt: Timestamp,
    statusCode: Type.Union([Type.Integer(), Type.Null()], { description: 'Null when no answer came (refused, reset, timed out, DNS).' }),
    latencyMs: Type.Integer(),
    responseBody: Type.Union([Type.String(), Type.Null()], { description: 'The first few KB of the answer.' }),
    error: Type.Union([Type.String(), Type.Null()]),
    outcome: Type.String({ enum: ['succeeded', 'retry', 'dead'] }),
  },
  { additionalProperties: false },
);

export const TestAttempt = Type.Object(
  {
    ...Attempt.properties,
    messageId: Type.String({ description: 'The test message (`portcullis.endpoint.test`), stored like any other.', examples: ['msg_01jdx3m5a8q2v7k4r9t6w1y3zb'] }),
    deliveryId: Type.String({ description: 'Its delivery to this endpoint, with this attempt: in the deliveries list and retried like any other.', examples: ['dlv_01jdx3m5a8q2v7k4r9t6w1y3zb'] }),
  },
  { additionalProperties: false },
);

export const DeliveryDetail = Type.Object({ ...Delivery.properties, history: Type.Array(Attempt, { description: "Every attempt, oldest first." }) }, { additionalProperties: false });
export const DeliveryList = Type.Object({ data: Type.Array(Delivery), nextCursor: Type.Union([Type.String(), Type.Null()]) }, { additionalProperties: false });

const FilterFields = {
  endpoint: Type.Optional(Type.String({ minLength: 1, maxLength: 100, description: 'An endpoint id.' })),
  subject: Type.Optional(Type.String({ minLength: 1, maxLength: 100, description: 'A message or event id.' })),
  status: Type.Optional(Status),
  from: Type.Optional(Type.String({ format: 'date-time', description: 'Created at or after.' })),
  to: Type.Optional(Type.String({ format: 'date-time', description: 'Created before.' })),
};

export const DeliveryQuery = Type.Object({ ...ListQuery.properties, ...FilterFields }, { additionalProperties: false });

export const BulkRetryBody = Type.Object(
  { ...FilterFields, limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000, description: 'At most this many (default 1000), oldest first.' })) },
  { additionalProperties: false },
);

export const RecoverBody = Type.Object(
  { since: Type.String({ format: 'date-time', description: 'Re-send every dead delivery of the endpoint created at or after this time.' }), limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000 })) },
  { additionalProperties: false },
);

export const RetryResult = Type.Object({ retried: Type.Integer() }, { additionalProperties: false });

export type DeliveryResponse = Static<typeof Delivery>;
export type DeliveryDetailResponse = Static<typeof DeliveryDetail>;
export type DeliveryListResponse = Static<typeof DeliveryList>;
export type DeliveryListQuery = Static<typeof DeliveryQuery>;
export type BulkRetryRequest = Static<typeof BulkRetryBody>;
export type RecoverRequest = Static<typeof RecoverBody>;
export type RetryResponse = Static<typeof RetryResult>;
export type AttemptResponse = Static<typeof Attempt>;
export type TestAttemptResponse = Static<typeof TestAttempt>;
