import { Type } from 'typebox';
import type { Static } from 'typebox';
import { ALL_SCOPES } from '../../core/scopes.ts';
import { Metadata, NullableTimestamp, Timestamp } from './common.ts';

/** Longest grace period a rotation may give the previous secret. */
export const KEY_ROTATION_MAX_GRACE_S = 30 * 24 * 60 * 60;

const Scope = Type.String({ enum: [...ALL_SCOPES], description: '`<resource>:read`, `<resource>:write` or `admin`.' });
const Name = Type.String({ minLength: 1, maxLength: 200, examples: ['acme-production'] });
const RateLimitPolicy = Type.Union([Type.String({ minLength: 1, maxLength: 64 }), Type.Null()], {
  description: 'A rate-limit policy named in the configuration (`rateLimits.policies`); null for the default per-key policy.',
  examples: ['gold'],
});
const Customer = Type.Union([Type.String({ minLength: 1, maxLength: 200 }), Type.Null()], { description: 'Who the key belongs to (your customer or tenant id).' });

export const Key = Type.Object(
  {
    id: Type.String({ examples: ['key_01jdx3m5a8q2v7k4r9t6w1y3zb'] }),
    name: Type.String(),
    customer: Type.Union([Type.String(), Type.Null()]),
    metadata: Metadata,
    scopes: Type.Array(Type.String()),
    prefix: Type.String({ description: 'The first characters of the key, for recognising it. The key itself is never shown again.', examples: ['pcl_4fT9xQ2b'] }),
    status: Type.String({ enum: ['active', 'expired', 'revoked'] }),
    createdBy: Type.Union([Type.String(), Type.Null()], { description: 'Id of the key that created this one.' }),
    createdAt: Timestamp,
    updatedAt: Timestamp,
    expiresAt: NullableTimestamp,
    revokedAt: NullableTimestamp,
    rotatedAt: NullableTimestamp,
    rateLimitPolicy: RateLimitPolicy,
  },
  { additionalProperties: false },
);
export const KeyWithSecret = Type.Object(
  {
    ...Key.properties,
    secret: Type.String({ description: 'The API key. Shown once: store it now.', examples: ['pcl_4fT9xQ2bN7mK1pL8sV3dR6wY0cZ5hJ000000'] }),
    previousSecretExpiresAt: Type.Optional(NullableTimestamp),
  },
  { additionalProperties: false },
);

export const CreateKeyBody = Type.Object(
  {
    name: Name,
    customer: Type.Optional(Customer),
    metadata: Type.Optional(Metadata),
    scopes: Type.Array(Scope, { minItems: 1, maxItems: ALL_SCOPES.length, uniqueItems: true, examples: [['keys:read']] }),
    expiresAt: Type.Optional(NullableTimestamp),
    rateLimitPolicy: Type.Optional(RateLimitPolicy),
  },
  { additionalProperties: false },
);
export const UpdateKeyBody = Type.Object(
  {
    name: Type.Optional(Name),
    customer: Type.Optional(Customer),
    metadata: Type.Optional(Metadata),
    scopes: Type.Optional(Type.Array(Scope, { minItems: 1, maxItems: ALL_SCOPES.length, uniqueItems: true })),
    expiresAt: Type.Optional(NullableTimestamp),
    rateLimitPolicy: Type.Optional(RateLimitPolicy),
  },
  { additionalProperties: false, minProperties: 1 },
);
export const RotateKeyBody = Type.Object(
  {
    gracePeriodSeconds: Type.Optional(
      Type.Integer({ minimum: 0, maximum: KEY_ROTATION_MAX_GRACE_S, default: 0, description: 'How long the previous secret keeps working (default 0: it stops now).' }),
    ),
  },
  { additionalProperties: false },
);

export const KeyList = Type.Object({ data: Type.Array(Key), nextCursor: Type.Union([Type.String(), Type.Null()]) }, { additionalProperties: false });

export type ApiKey = Static<typeof Key>;
export type ApiKeyWithSecret = Static<typeof KeyWithSecret>;
export type ApiKeyList = Static<typeof KeyList>;
export type CreateKeyRequest = Static<typeof CreateKeyBody>;
export type UpdateKeyRequest = Static<typeof UpdateKeyBody>;
export type RotateKeyRequest = Static<typeof RotateKeyBody>;
