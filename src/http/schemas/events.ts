import { Type } from 'typebox';
import type { Static } from 'typebox';
import { ListQuery, Timestamp } from './common.ts';

const Status = Type.String({ enum: ['pending', 'processed', 'dead'], description: '`pending` (a job waits or runs), `processed`, or `dead` (dead-lettered).' });

export const EventSummary = Type.Object(
  {
    id: Type.String({ examples: ['evt_01jdx3m5a8q2v7k4r9t6w1y3zb'] }),
    sourceId: Type.String(),
    type: Type.String({ description: "The provider's event type under its namespace, dot-separated.", examples: ['github.pull_request.opened'] }),
    deliveryId: Type.Union([Type.String(), Type.Null()]),
    receivedAt: Timestamp,
    status: Status,
  },
  { additionalProperties: false },
);

const Attempt = Type.Object(
  { attempt: Type.Integer(), startedAt: Timestamp, finishedAt: Timestamp, outcome: Type.String({ enum: ['done', 'retry', 'dead'] }), error: Type.Union([Type.String(), Type.Null()]) },
  { additionalProperties: false },
);

export const EventDetail = Type.Object(
  {
    ...EventSummary.properties,
    headers: Type.Record(Type.String(), Type.String(), { description: 'The headers kept with the event (credentials are never kept).' }),
    body: Type.Union([Type.String(), Type.Null()], { description: 'The raw body, base64; null once retention removed it.' }),
    bodyText: Type.Union([Type.String(), Type.Null()], { description: 'The same body as text, when it is valid UTF-8.' }),
    jobs: Type.Array(
      Type.Object(
        {
          id: Type.String(),
          kind: Type.String(),
          status: Type.String({ enum: ['ready', 'running', 'done', 'dead'] }),
          runAt: Timestamp,
          lastError: Type.Union([Type.String(), Type.Null()]),
          createdAt: Timestamp,
          attempts: Type.Array(Attempt),
        },
        { additionalProperties: false },
      ),
      { description: 'Processing history: every job (a replay adds one) with its attempts.' },
    ),
  },
  { additionalProperties: false },
);

export const EventQuery = Type.Object(
  {
    ...ListQuery.properties,
    source: Type.Optional(Type.String({ minLength: 1, maxLength: 100, description: 'A source id.' })),
    type: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9_.-]+(\\.\\*)?$', maxLength: 200, description: 'Exact type, or a prefix with `.*` (`github.pull_request.*`).' })),
    status: Type.Optional(Status),
    from: Type.Optional(Type.String({ format: 'date-time', description: 'Received at or after.' })),
    to: Type.Optional(Type.String({ format: 'date-time', description: 'Received before.' })),
  },
  { additionalProperties: false },
);

export const BULK_REPLAY_MAX = 10_000;

export const BulkReplayBody = Type.Object(
  {
    source: EventQuery.properties.source,
    type: EventQuery.properties.type,
    status: EventQuery.properties.status,
    from: EventQuery.properties.from,
    to: EventQuery.properties.to,
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: BULK_REPLAY_MAX, default: 1000, description: `At most this many events (default 1000, at most ${BULK_REPLAY_MAX}), oldest first.` })),
  },
  { additionalProperties: false, minProperties: 1, description: 'At least one filter: replaying everything is never a default.' },
);
export const BulkReplayResult = Type.Object({ replayed: Type.Integer() }, { additionalProperties: false });

export const EventList = Type.Object({ data: Type.Array(EventSummary), nextCursor: Type.Union([Type.String(), Type.Null()]) }, { additionalProperties: false });
export const ReplayResult = Type.Object({ eventId: Type.String(), jobId: Type.String() }, { additionalProperties: false });

export type EventDetailResponse = Static<typeof EventDetail>;
export type EventListResponse = Static<typeof EventList>;
export type EventListQuery = Static<typeof EventQuery>;
export type ReplayResponse = Static<typeof ReplayResult>;
export type BulkReplayRequest = Static<typeof BulkReplayBody>;
export type BulkReplayResponse = Static<typeof BulkReplayResult>;
