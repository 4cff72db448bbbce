import { Type } from 'typebox';
import type { Static } from 'typebox';
import { ListQuery, Timestamp } from './common.ts';

/** Dot-separated names; `portcullis.` is reserved for the events Portcullis itself publishes. */
export const EventTypeName = Type.String({
  pattern: '^(?!portcullis\\.)[A-Za-z0-9_-]+(\\.[A-Za-z0-9_-]+)*$',
  maxLength: 200,
  description: 'Dot-separated (`invoice.paid`); `portcullis.` is reserved.',
  examples: ['invoice.paid'],
});

export const CreateMessageBody = Type.Object(
  {
    eventType: EventTypeName,
    payload: Type.Record(Type.String(), Type.Unknown(), { description: 'The JSON object delivered as the body, byte for byte as stored.', examples: [{ invoiceId: 'in_123', amount: 4200 }] }),
  },
  { additionalProperties: false },
);

export const Message = Type.Object(
  {
    id: Type.String({ examples: ['msg_01jdx3m5a8q2v7k4r9t6w1y3zb'] }),
    eventType: Type.String(),
    createdAt: Timestamp,
  },
  { additionalProperties: false },
);

export const CreatedMessage = Type.Object(
  { ...Message.properties, deliveries: Type.Integer({ description: 'Deliveries queued: one per enabled endpoint whose filters match.' }) },
  { additionalProperties: false },
);

export const MessageDetail = Type.Object(
  { ...Message.properties, payload: Type.Unknown({ description: 'The payload as delivered.' }) },
  { additionalProperties: false },
);

export const MessageList = Type.Object({ data: Type.Array(Message), nextCursor: Type.Union([Type.String(), Type.Null()]) }, { additionalProperties: false });

export const MessageQuery = Type.Object(
  {
    ...ListQuery.properties,
    eventType: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9_.-]+(\\.\\*)?$', maxLength: 200, description: 'Exact type, or a prefix with `.*`.' })),
  },
  { additionalProperties: false },
);

export type CreateMessageRequest = Static<typeof CreateMessageBody>;
export type CreatedMessageResponse = Static<typeof CreatedMessage>;
export type MessageDetailResponse = Static<typeof MessageDetail>;
export type MessageListResponse = Static<typeof MessageList>;
export type MessageListQuery = Static<typeof MessageQuery>;
