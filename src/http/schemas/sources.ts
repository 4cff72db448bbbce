import { Type } from 'typebox';
import type { Static } from 'typebox';
import { SOURCE_TYPES } from '../../ingest/verify/index.ts';
import { Metadata, NullableTimestamp, Timestamp } from './common.ts';

/** Sources of these types are given the provider's own secret (the provider generates it). */
export const PROVIDER_SECRET_TYPES = ['stripe', 'shopify', 'slack'] as const;
export const SOURCE_DEDUP_DEFAULT_S = 72 * 60 * 60;
export const SOURCE_BODY_LIMIT_GITHUB = 25 * 1024 * 1024;
export const SOURCE_BODY_LIMIT_DEFAULT = 1024 * 1024;
export const SOURCE_BODY_LIMIT_MAX = 100 * 1024 * 1024;
export const SOURCE_ROTATION_MAX_GRACE_S = 30 * 24 * 60 * 60;

const Slug = Type.String({ pattern: '^[a-z0-9][a-z0-9-]{0,62}$', description: 'Lower-case name for the URL: `/in/<slug>`.', examples: ['github-main'] });
const SourceType = Type.String({ enum: [...SOURCE_TYPES], description: 'Which provider protocol verifies its deliveries.' });
const Secret = Type.String({ minLength: 8, maxLength: 512, description: 'The signing secret (Stripe, Shopify and Slack generate theirs: paste it). Generated when omitted.' });
const HeaderName = Type.String({ pattern: '^[A-Za-z0-9-]{1,100}$' });
const JsonPath = Type.String({ pattern: '^[A-Za-z0-9_]+(\\.[A-Za-z0-9_]+)*$', maxLength: 200 });

export const GenericSettings = Type.Object(
  {
    signatureHeader: HeaderName,
    algorithm: Type.String({ enum: ['sha256', 'sha512'], default: 'sha256' }),
    encoding: Type.String({ enum: ['hex', 'base64'], default: 'hex' }),
    prefix: Type.String({ maxLength: 50, default: '', description: 'Text before the digest, e.g. `sha256=`.' }),
    timestampHeader: Type.Union([HeaderName, Type.Null()], { default: null }),
    toleranceSeconds: Type.Integer({ minimum: 1, maximum: 86_400, default: 300 }),
    signedContent: Type.String({ enum: ['body', 'timestamp.body'], default: 'body' }),
    dedupHeader: Type.Union([HeaderName, Type.Null()], { default: null }),
    dedupJsonPath: Type.Union([JsonPath, Type.Null()], { default: null }),
    typeHeader: Type.Union([HeaderName, Type.Null()], { default: null }),
    typeJsonPath: Type.Union([JsonPath, Type.Null()], { default: null }),
  },
  { additionalProperties: false, description: 'How a generic source signs: required for type `generic`, refused otherwise.' },
);

const Common = {
  dedupWindowSeconds: Type.Integer({ minimum: 60, maximum: 90 * 86_400, description: `A delivery repeated within this window is acknowledged and not stored again (default ${SOURCE_DEDUP_DEFAULT_S} s: providers retry for days).` }),
  bodyLimit: Type.Integer({ minimum: 1024, maximum: SOURCE_BODY_LIMIT_MAX, description: 'Largest delivery accepted, in bytes (default 25 MiB for GitHub, 1 MiB otherwise).' }),
  rateLimitPolicy: Type.Union([Type.String({ minLength: 1, maxLength: 64 }), Type.Null()], { description: 'A configured rate-limit policy; null: no limit (the default).' }),
  rateLimitMode: Type.String({ enum: ['reject', 'throttle'], description: '`reject` answers 429; `throttle` accepts and slows processing (for providers that never retry).' }),
};

export const Source = Type.Object(
  {
    id: Type.String({ examples: ['src_01jdx3m5a8q2v7k4r9t6w1y3zb'] }),
    slug: Type.Union([Type.String(), Type.Null()]),
    name: Type.String(),
    type: SourceType,
    url: Type.String({ description: 'Where the provider sends deliveries (relative to this server).', examples: ['/in/github-main'] }),
    dedupWindowSeconds: Type.Integer(),
    bodyLimit: Type.Integer(),
    rateLimitPolicy: Type.Union([Type.String(), Type.Null()]),
    rateLimitMode: Type.String(),
    generic: Type.Union([Type.Record(Type.String(), Type.Unknown()), Type.Null()]),
    metadata: Metadata,
    previousSecretExpiresAt: Type.Union([Timestamp, Type.Null()], { description: 'During a rotation: when the previous secret stops being accepted.' }),
    createdAt: Timestamp,
    updatedAt: Timestamp,
  },
  { additionalProperties: false },
);

export const SourceWithSecret = Type.Object(
  { ...Source.properties, secret: Type.String({ description: 'The signing secret. Shown now; afterwards only through reveal-secret.' }) },
  { additionalProperties: false },
);

export const CreateSourceBody = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 200, examples: ['GitHub — main org'] }),
    slug: Type.Optional(Slug),
    type: SourceType,
    secret: Type.Optional(Secret),
    dedupWindowSeconds: Type.Optional(Common.dedupWindowSeconds),
    bodyLimit: Type.Optional(Common.bodyLimit),
    rateLimitPolicy: Type.Optional(Common.rateLimitPolicy),
    rateLimitMode: Type.Optional(Common.rateLimitMode),
    generic: Type.Optional(GenericSettings),
    metadata: Type.Optional(Metadata),
  },
  { additionalProperties: false },
);

export const UpdateSourceBody = Type.Object(
  {
    name: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    slug: Type.Optional(Type.Union([Slug, Type.Null()])),
    dedupWindowSeconds: Type.Optional(Common.dedupWindowSeconds),
    bodyLimit: Type.Optional(Common.bodyLimit),
    rateLimitPolicy: Type.Optional(Common.rateLimitPolicy),
    rateLimitMode: Type.Optional(Common.rateLimitMode),
    generic: Type.Optional(GenericSettings),
    metadata: Type.Optional(Metadata),
  },
  { additionalProperties: false, minProperties: 1 },
);

export const RotateSourceSecretBody = Type.Object(
  {
    secret: Type.Optional(Secret),
    gracePeriodSeconds: Type.Optional(Type.Integer({ minimum: 0, maximum: SOURCE_ROTATION_MAX_GRACE_S, default: 0, description: 'How long the previous secret keeps being accepted.' })),
  },
  { additionalProperties: false },
);

export const RevealedSecret = Type.Object(
  { secret: Type.String(), previousSecret: Type.Union([Type.String(), Type.Null()]), previousSecretExpiresAt: NullableTimestamp },
  { additionalProperties: false },
);

export const SourceList = Type.Object({ data: Type.Array(Source), nextCursor: Type.Union([Type.String(), Type.Null()]) }, { additionalProperties: false });

export type SourceResponse = Static<typeof Source>;
export type SourceWithSecretResponse = Static<typeof SourceWithSecret>;
export type SourceListResponse = Static<typeof SourceList>;
export type CreateSourceRequest = Static<typeof CreateSourceBody>;
export type UpdateSourceRequest = Static<typeof UpdateSourceBody>;
export type RotateSourceSecretRequest = Static<typeof RotateSourceSecretBody>;
export type RevealedSecretResponse = Static<typeof RevealedSecret>;
