import { Type } from 'typebox';
import type { Static } from 'typebox';
import { Metadata, Timestamp } from './common.ts';
import { RevealedSecret } from './sources.ts';
import type { RevealedSecretResponse } from './sources.ts';

export const ENDPOINT_URL_MAX_LENGTH = 2048;
export const ENDPOINT_TIMEOUT_DEFAULT_S = 15;
export const ENDPOINT_TIMEOUT_MAX_S = 60;
export const ENDPOINT_RATE_LIMIT_MAX = 10_000;
export const ENDPOINT_RETRY_SCHEDULE_MAX_ITEMS = 20;
export const ENDPOINT_RETRY_DELAY_MAX_S = 86_400;
export const ENDPOINT_HEADERS_MAX = 20;
export const ENDPOINT_HEADER_VALUE_MAX_LENGTH = 4096;
/** As Svix: the previous secret keeps signing (beside the new one) for a day unless told otherwise. */
export const ENDPOINT_ROTATION_DEFAULT_GRACE_S = 24 * 60 * 60;
export const ENDPOINT_ROTATION_MAX_GRACE_S = 7 * 24 * 60 * 60;
/** Bytes of a `whsec_` secret's key, decoded: 24 generated (as Svix), 24 to 64 accepted. */
export const ENDPOINT_SECRET_BYTES = 24;
export const ENDPOINT_SECRET_MIN_BYTES = 24;
export const ENDPOINT_SECRET_MAX_BYTES = 64;

const Url = Type.String({
  minLength: 1,
  maxLength: ENDPOINT_URL_MAX_LENGTH,
  description:
    'Where deliveries are POSTed: an absolute `http` or `https` URL without credentials. Its host must be (or resolve only to) public addresses, unless `ssrfAllow` opens its range.',
  examples: ['https://hooks.example.com/portcullis'],
});
const Description = Type.String({ maxLength: 1000, description: 'What the endpoint is for.' });
const TypePattern = Type.String({ pattern: '^[A-Za-z0-9_.-]+(\\.\\*)?$', maxLength: 200 });
const EventTypes = Type.Array(TypePattern, {
  maxItems: 100,
  uniqueItems: true,
  description: 'Event types it receives, exact or `prefix.*`; every type when empty (operational `portcullis.*` events only when named).',
  examples: [['github.push', 'github.pull_request.*']],
});
const SourceIds = Type.Array(Type.String({ pattern: '^src_[0-9a-z]{26}$' }), {
  maxItems: 100,
  uniqueItems: true,
  description: 'Inbound sources whose events it receives; every source when empty. Published messages ignore it.',
});
const Headers = Type.Record(Type.String({ minLength: 1, maxLength: 100 }), Type.String({ maxLength: ENDPOINT_HEADER_VALUE_MAX_LENGTH }), {
  maxProperties: ENDPOINT_HEADERS_MAX,
  description:
    'Extra headers sent with every delivery, names case-insensitive. Hop-by-hop headers, `Host`, `Content-Length`, `Content-Type`, the `webhook-*` signature headers and `portcullis-*` are refused: Portcullis sets them. ' +
    'Values are encrypted at rest; those of headers whose names suggest a credential (containing auth, token, secret, key, pass, credential, session, cookie or signature) are never shown again, only their names (`sensitiveHeaders`).',
  examples: [{ 'x-team': 'billing', authorization: 'Bearer s3cr3t' }],
});
const HeadersPatch = Type.Record(
  Type.String({ minLength: 1, maxLength: 100 }),
  Type.Union([Type.String({ maxLength: ENDPOINT_HEADER_VALUE_MAX_LENGTH }), Type.Null()]),
  {
    maxProperties: ENDPOINT_HEADERS_MAX,
    description:
      'Changes to the headers, merged as JSON Merge Patch does (RFC 7396): a value sets a header, null removes it, headers not named are kept. ' +
      `At most ${ENDPOINT_HEADERS_MAX} headers after the change; the same names are refused as at creation.`,
    examples: [{ 'x-team': 'payments', 'x-old': null }],
  },
);
const RateLimit = Type.Union([Type.Integer({ minimum: 1, maximum: ENDPOINT_RATE_LIMIT_MAX }), Type.Null()], {
  description: 'Deliveries per second at most; null (the default): no limit.',
});
const TimeoutSeconds = Type.Integer({ minimum: 1, maximum: ENDPOINT_TIMEOUT_MAX_S, description: `How long an attempt may take (default ${ENDPOINT_TIMEOUT_DEFAULT_S} s).` });
const RetrySchedule = Type.Union(
  [
    Type.Array(Type.Integer({ minimum: 0, maximum: ENDPOINT_RETRY_DELAY_MAX_S }), {
      minItems: 1,
      maxItems: ENDPOINT_RETRY_SCHEDULE_MAX_ITEMS,
    }),
    Type.Null(),
  ],
  { description: "Seconds before each attempt (the first usually 0); null (the default): the server's `deliveryRetrySchedule`.", examples: [[0, 5, 300, 1800]] },
);
const Enabled = Type.Boolean({ description: 'Disabled endpoints get no deliveries. Setting it true again re-enables one that was disabled (by hand, by a 410 or by failing too long).' });
const Secret = Type.String({
  pattern: '^whsec_[A-Za-z0-9+/]+={0,2}$',
  maxLength: 6 + 88,
  description: `The signing secret: \`whsec_\` and the base64 of ${ENDPOINT_SECRET_MIN_BYTES} to ${ENDPOINT_SECRET_MAX_BYTES} random bytes. Generated (${ENDPOINT_SECRET_BYTES} bytes) when omitted.`,
});

export const Endpoint = Type.Object(
  {
    id: Type.String({ examples: ['ep_01jdx3m5a8q2v7k4r9t6w1y3zb'] }),
    url: Type.String({ description: 'As the URL parser normalised it (what deliveries use).' }),
    description: Type.String(),
    eventTypes: Type.Array(Type.String()),
    sourceIds: Type.Array(Type.String()),
    headers: Type.Record(Type.String(), Type.String(), { description: 'Its own headers and their values, except the sensitive ones.' }),
    sensitiveHeaders: Type.Array(Type.String(), { description: 'Names of its own headers whose values are write-only (credentials): sent with every delivery, never shown.' }),
    rateLimitPerSecond: Type.Union([Type.Integer(), Type.Null()]),
    timeoutSeconds: Type.Integer(),
    retrySchedule: Type.Union([Type.Array(Type.Integer()), Type.Null()], { description: "null: the server's schedule." }),
    enabled: Type.Boolean(),
    disabledReason: Type.Union([Type.String(), Type.Null()], {
      description: 'Why Portcullis disabled it: `gone` (it answered 410) or `failing` (it failed too long); null when enabled, or disabled by hand.',
    }),
    consecutiveFailures: Type.Integer({ description: 'Attempts failed since the last success.' }),
    failingSince: Type.Union([Timestamp, Type.Null()], { description: 'When the current run of failures began; null after a success.' }),
    metadata: Metadata,
    previousSecretExpiresAt: Type.Union([Timestamp, Type.Null()], { description: 'During a rotation: until when deliveries carry a signature with the previous secret too.' }),
    createdAt: Timestamp,
    updatedAt: Timestamp,
  },
  { additionalProperties: false },
);

export const EndpointWithSecret = Type.Object(
  { ...Endpoint.properties, secret: Type.String({ description: 'The signing secret (`whsec_…`). Shown now; afterwards only through reveal-secret.' }) },
  { additionalProperties: false },
);

export const CreateEndpointBody = Type.Object(
  {
    url: Url,
    description: Type.Optional(Description),
    eventTypes: Type.Optional(EventTypes),
    sourceIds: Type.Optional(SourceIds),
    headers: Type.Optional(Headers),
    rateLimitPerSecond: Type.Optional(RateLimit),
    timeoutSeconds: Type.Optional(TimeoutSeconds),
    retrySchedule: Type.Optional(RetrySchedule),
    enabled: Type.Optional(Enabled),
    metadata: Type.Optional(Metadata),
    secret: Type.Optional(Secret),
  },
  { additionalProperties: false },
);

export const UpdateEndpointBody = Type.Object(
  {
    url: Type.Optional(Url),
    description: Type.Optional(Description),
    eventTypes: Type.Optional(EventTypes),
    sourceIds: Type.Optional(SourceIds),
    headers: Type.Optional(HeadersPatch),
    rateLimitPerSecond: Type.Optional(RateLimit),
    timeoutSeconds: Type.Optional(TimeoutSeconds),
    retrySchedule: Type.Optional(RetrySchedule),
    enabled: Type.Optional(Enabled),
    metadata: Type.Optional(Metadata),
  },
  { additionalProperties: false, minProperties: 1 },
);

export const RotateEndpointSecretBody = Type.Object(
  {
    secret: Type.Optional(Secret),
    gracePeriodSeconds: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: ENDPOINT_ROTATION_MAX_GRACE_S,
        default: ENDPOINT_ROTATION_DEFAULT_GRACE_S,
        description: `How long deliveries keep carrying a signature with the previous secret too (default ${ENDPOINT_ROTATION_DEFAULT_GRACE_S} s, at most 7 days; 0: the new one alone, at once).`,
      }),
    ),
  },
  { additionalProperties: false },
);

export const EndpointList = Type.Object({ data: Type.Array(Endpoint), nextCursor: Type.Union([Type.String(), Type.Null()]) }, { additionalProperties: false });

export { RevealedSecret as RevealedEndpointSecret };

export type EndpointResponse = Static<typeof Endpoint>;
export type EndpointWithSecretResponse = Static<typeof EndpointWithSecret>;
export type EndpointListResponse = Static<typeof EndpointList>;
export type CreateEndpointRequest = Static<typeof CreateEndpointBody>;
export type UpdateEndpointRequest = Static<typeof UpdateEndpointBody>;
export type RotateEndpointSecretRequest = Static<typeof RotateEndpointSecretBody>;
export type RevealedEndpointSecretResponse = RevealedSecretResponse;
