import { Type } from 'typebox';
import type { Static } from 'typebox';
import { SCOPE_PATTERN, SCOPES_PER_KEY_MAX } from '../../core/scopes.ts';
import { Metadata, NullableTimestamp, Timestamp } from './common.ts';

/** Longest grace period a rotation may give the previous secret. */
export const KEY_ROTATION_MAX_GRACE_S = 30 * 24 * 60 * 60;

const Scope = Type.String({
  pattern: SCOPE_PATTERN,
  description: '`<resource>:read`, `<resource>:write` or `admin`: a built-in resource (keys, usage, metrics, …) or one a proxy route declares. Unknown scopes are refused.',
});
const Name = Type.String({ minLength: 1, maxLength: 200, examples: ['acme-production'] });
const RateLimitPolicy = Type.Union([Type.String({ minLength: 1, maxLength: 64 }), Type.Null()], {
  description: 'A rate-limit policy named in the configuration (`rateLimits.policies`); null for the default per-key policy.',
  examples: ['gold'],
});
/** Largest monthly quota, in units: far beyond any real plan, and exact as a double. */
export const QUOTA_MAX_UNITS = 1_000_000_000_000;
const QuotaIn = Type.Union(
  [
    Type.Object(
      {
        limit: Type.Integer({ minimum: 1, maximum: QUOTA_MAX_UNITS, description: 'Cost units per calendar month (UTC); past it, 429 `quota-exceeded`.' }),
        softLimit: Type.Optional(
          Type.Union([Type.Integer({ minimum: 1, maximum: QUOTA_MAX_UNITS }), Type.Null()], { description: 'From this many units on, responses carry `X-Quota-Warning`. Below `limit`.' }),
        ),
      },
      { additionalProperties: false },
    ),
    Type.Null(),
  ],
  { description: 'Monthly quota in cost units (see `metering.routeCosts`); null: unlimited.', examples: [{ limit: 100000, softLimit: 80000 }] },
);
const QuotaOut = Type.Union([Type.Object({ limit: Type.Integer(), softLimit: Type.Union([Type.Integer(), Type.Null()]) }, { additionalProperties: false }), Type.Null()]);
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
    quota: QuotaOut,
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
    scopes: Type.Array(Scope, { minItems: 1, maxItems: SCOPES_PER_KEY_MAX, uniqueItems: true, examples: [['keys:read']] }),
    expiresAt: Type.Optional(NullableTimestamp),
    rateLimitPolicy: Type.Optional(RateLimitPolicy),
    quota: Type.Optional(QuotaIn),
  },
  { additionalProperties: false },
);
export const UpdateKeyBody = Type.Object(
  {
    name: Type.Optional(Name),
    customer: Type.Optional(Customer),
    metadata: Type.Optional(Metadata),
    scopes: Type.Optional(Type.Array(Scope, { minItems: 1, maxItems: SCOPES_PER_KEY_MAX, uniqueItems: true })),
    expiresAt: Type.Optional(NullableTimestamp),
    rateLimitPolicy: Type.Optional(RateLimitPolicy),
    quota: Type.Optional(QuotaIn),
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

export const VERIFY_CODES = ['valid', 'malformed', 'unknown', 'rotated', 'revoked', 'expired', 'scope-missing', 'rate-limited', 'quota-exceeded', 'rate-limiter-unavailable'] as const;

export const VerifyKeyBody = Type.Object(
  {
    key: Type.String({ minLength: 1, maxLength: 200, description: 'The API key your caller presented.', examples: ['pcl_4fT9xQ2bN7mK1pL8sV3dR6wY0cZ5hJ000000'] }),
    scope: Type.Optional(Scope),
    cost: Type.Optional(Type.Integer({ minimum: 0, maximum: 1_000_000, default: 1, description: 'Units this use costs against the key’s monthly quota (default 1).' })),
  },
  { additionalProperties: false },
);

export const VerifyKeyResult = Type.Object(
  {
    valid: Type.Boolean(),
    code: Type.String({ enum: [...VERIFY_CODES], description: '`valid`, or why not.' }),
    keyId: Type.Union([Type.String(), Type.Null()]),
    name: Type.Union([Type.String(), Type.Null()]),
    customer: Type.Union([Type.String(), Type.Null()]),
    scopes: Type.Union([Type.Array(Type.String()), Type.Null()]),
    metadata: Type.Union([Metadata, Type.Null()]),
    expiresAt: NullableTimestamp,
    rateLimit: Type.Union([
      Type.Object(
        {
          policy: Type.String(),
          limit: Type.Integer(),
          windowSeconds: Type.Integer(),
          remaining: Type.Integer(),
          resetSeconds: Type.Integer({ description: 'Seconds until the full quota of the policy is back.' }),
          retryAfterSeconds: Type.Integer({ description: '0 when allowed.' }),
        },
        { additionalProperties: false },
      ),
      Type.Null(),
    ]),
    quota: Type.Union([
      Type.Object({ limit: Type.Integer(), remaining: Type.Integer(), resetsAt: Timestamp }, { additionalProperties: false }),
      Type.Null(),
    ]),
  },
  { additionalProperties: false },
);

export type VerifyKeyRequest = Static<typeof VerifyKeyBody>;
export type VerifyKeyResponse = Static<typeof VerifyKeyResult>;
