import { Type } from 'typebox';
import type { Static } from 'typebox';
import { EventSummary } from './events.ts';
import { Timestamp } from './common.ts';

export const VISIBILITY_DEFAULT_S = 30;
export const VISIBILITY_MAX_S = 12 * 3600;
export const LEASE_MAX_DEFAULT = 10;
export const LEASE_MAX = 100;
export const WAIT_MAX_S = 60;
/** A lease stops adding events once their bodies pass this size (one is always handed out). */
export const LEASE_MAX_BYTES = 8 * 1024 * 1024;
export const RECEIPTS_MAX = 100;

const TypePattern = Type.String({ pattern: '^[A-Za-z0-9_.-]+(\\.\\*)?$', maxLength: 200 });
const Receipt = Type.String({ minLength: 3, maxLength: 200, pattern: '^[^.]+\\.[A-Za-z0-9_-]+$', description: 'The receipt of one lease.' });

export const CreateConsumerGroupBody = Type.Object(
  {
    name: Type.String({ pattern: '^[a-z0-9][a-z0-9._-]{0,99}$', description: 'Unique; lower-case letters, digits, `.`, `_`, `-`.', examples: ['billing-sync'] }),
    source: Type.Optional(Type.String({ minLength: 1, maxLength: 100, description: "Only this source's events (its id)." })),
    types: Type.Optional(Type.Array(TypePattern, { maxItems: 50, uniqueItems: true, description: 'Event types, exact or `prefix.*`; every type when absent.', examples: [['github.push', 'github.pull_request.*']] })),
    start: Type.Optional(
      Type.String({
        pattern: '^(now|earliest|\\d{4}-\\d{2}-\\d{2}T.+)$',
        description: '`now` (default): events stored from now on. `earliest`: every stored event. An RFC 3339 time: events received from then on.',
        examples: ['now', '2026-11-01T00:00:00Z'],
      }),
    ),
    visibilityTimeoutSeconds: Type.Optional(
      Type.Integer({ minimum: 1, maximum: VISIBILITY_MAX_S, description: `How long a leased event stays hidden from the group unless acknowledged (default ${VISIBILITY_DEFAULT_S}).` }),
    ),
  },
  { additionalProperties: false },
);

export const ConsumerGroup = Type.Object(
  {
    id: Type.String({ examples: ['cgr_01jdx3m5a8q2v7k4r9t6w1y3zb'] }),
    name: Type.String(),
    sourceId: Type.Union([Type.String(), Type.Null()]),
    types: Type.Array(Type.String()),
    startAt: Type.String({ format: 'date-time', description: 'Events received before are skipped (the creation time for a group started `now`).' }),
    visibilityTimeoutSeconds: Type.Integer(),
    createdAt: Timestamp,
  },
  { additionalProperties: false },
);
export type ConsumerGroupResponse = Static<typeof ConsumerGroup>;

export const ConsumerGroupDetail = Type.Object(
  {
    ...ConsumerGroup.properties,
    pending: Type.Integer({ description: 'Events handed out and not acknowledged yet.' }),
    leased: Type.Integer({ description: 'Of those, the ones leased right now.' }),
  },
  { additionalProperties: false },
);

export const ConsumerGroupList = Type.Object({ data: Type.Array(ConsumerGroup), nextCursor: Type.Union([Type.String(), Type.Null()]) }, { additionalProperties: false });

export const LeaseQuery = Type.Object(
  {
    max: Type.Integer({ minimum: 1, maximum: LEASE_MAX, default: LEASE_MAX_DEFAULT, description: `Events to hand out at most (default ${LEASE_MAX_DEFAULT}); fewer when their bodies pass 8 MiB.` }),
    wait: Type.Number({ minimum: 0, maximum: WAIT_MAX_S, default: 0, description: `Seconds to wait for an event when none is there (long poll, at most ${WAIT_MAX_S}).` }),
    visibilityTimeout: Type.Optional(Type.Integer({ minimum: 1, maximum: VISIBILITY_MAX_S, description: "Seconds the events stay leased; the group's default when absent." })),
  },
  { additionalProperties: false },
);

export const LeasedEvent = Type.Object(
  {
    receipt: Receipt,
    deliveries: Type.Integer({ description: 'How many times the group has handed this event out, this time included.' }),
    visibleAt: Timestamp,
    event: Type.Object(
      {
        ...EventSummary.properties,
        headers: Type.Record(Type.String(), Type.String()),
        body: Type.Union([Type.String(), Type.Null()], { description: 'The raw body, base64; null once retention removed it.' }),
        bodyText: Type.Union([Type.String(), Type.Null()], { description: 'The same body as text, when it is valid UTF-8.' }),
      },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false },
);

export const LeaseResult = Type.Object({ data: Type.Array(LeasedEvent) }, { additionalProperties: false });

export const AckBody = Type.Object({ receipts: Type.Array(Receipt, { minItems: 1, maxItems: RECEIPTS_MAX, uniqueItems: true }) }, { additionalProperties: false });

export const NackBody = Type.Object(
  {
    receipts: Type.Array(Receipt, { minItems: 1, maxItems: RECEIPTS_MAX, uniqueItems: true }),
    delaySeconds: Type.Optional(Type.Integer({ minimum: 0, maximum: VISIBILITY_MAX_S, description: 'Hand the events out again after this long (default 0: at once).' })),
  },
  { additionalProperties: false },
);

export const SettleResult = Type.Object(
  {
    settled: Type.Array(Type.String(), { description: 'Receipts that were current and are now acknowledged (or released).' }),
    stale: Type.Array(Type.String(), { description: 'Receipts whose lease had been handed to another consumer, or already settled: nothing was done for them.' }),
  },
  { additionalProperties: false },
);

export type CreateConsumerGroupRequest = Static<typeof CreateConsumerGroupBody>;
export type ConsumerGroupDetailResponse = Static<typeof ConsumerGroupDetail>;
export type ConsumerGroupListResponse = Static<typeof ConsumerGroupList>;
export type LeaseOptions = Partial<Static<typeof LeaseQuery>>;
export type LeaseResponse = Static<typeof LeaseResult>;
export type NackRequest = Static<typeof NackBody>;
export type SettleResponse = Static<typeof SettleResult>;
