import type { Static } from 'typebox';
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { holdsScope } from '../../core/scopes.ts';
import type { ApiKeyRecord } from '../../storage/store.ts';
import type { Services } from '../services.ts';
import { AUTH_PROBLEMS, BODY_PROBLEMS, POST_PROBLEMS, curlExample, problemResponses } from '../schemas/common.ts';
import { VerifyKeyBody, VerifyKeyResult } from '../schemas/keys.ts';
import type { VERIFY_CODES } from '../schemas/keys.ts';

type Result = Static<typeof VerifyKeyResult>;
type Code = (typeof VERIFY_CODES)[number];

/** The route name the verified key's usage is recorded under. */
export const VERIFY_ROUTE = 'POST /v1/keys/verify';

function refused(code: Code): Result {
  return { valid: false, code, keyId: null, name: null, customer: null, scopes: null, metadata: null, expiresAt: null, rateLimit: null, quota: null };
}

function describe(key: ApiKeyRecord, code: Code): Result {
  return {
    ...refused(code),
    valid: code === 'valid',
    keyId: key.id,
    name: key.name,
    customer: key.customer,
    scopes: key.scopes,
    metadata: key.metadata,
    expiresAt: key.expiresAt?.toISOString() ?? null,
  };
}

/**
 * `POST /v1/keys/verify`: for applications that do not sit behind Portcullis.
 * Checks a key as the API itself would — checksum, store, revocation, expiry,
 * an optional scope — then applies the key's rate limit and takes `cost` units
 * of its monthly quota, as Unkey's verify does. The answer is always 200 with
 * `valid` and a `code`; 4xx are for the caller's own request.
 */
export function registerKeyVerifyRoute(app: FastifyInstance, services: Services): void {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();
  const { verifier, rateLimits, meter } = services;

  r.post('/v1/keys/verify', {
    config: { scope: 'keys:read' },
    schema: {
      operationId: 'verifyKey',
      tags: ['keys'],
      summary: 'Verify an API key, applying its rate limit and quota',
      description:
        'Tells whether a key is valid (and holds `scope`, when given), and counts the use against its rate limit and its monthly quota (`cost` units). ' +
        'Answers 200 whether or not the key is valid: read `valid` and `code`. Key details are returned only for a key that exists and is in force.' +
        curlExample('POST', '/v1/keys/verify', { key: 'pcl_…', scope: 'keys:read', cost: 1 }),
      body: VerifyKeyBody,
      response: { 200: VerifyKeyResult, ...problemResponses(...AUTH_PROBLEMS, ...BODY_PROBLEMS, ...POST_PROBLEMS) },
    },
    handler: async (request) => {
      const { key: token, scope, cost = 1 } = request.body;
      const verified = await verifier.verify(token);
      if (!verified.ok) return refused(verified.reason);
      const key = verified.key;
      if (scope && !holdsScope(key.scopes, scope)) return describe(key, 'scope-missing');

      const result = describe(key, 'valid');
      const policy = rateLimits.forKey(key);
      if (policy) {
        const checked = rateLimits.check(policy, `key:${key.id}`, true);
        const outcome = checked instanceof Promise ? await checked : checked;
        if (outcome.kind === 'unavailable') {
          if (outcome.failClosed) return { ...result, valid: false, code: 'rate-limiter-unavailable' as const };
        } else {
          const d = outcome.decision;
          result.rateLimit = { policy: policy.name, limit: policy.limit, windowSeconds: policy.windowSeconds, remaining: d.remaining, resetSeconds: d.resetSeconds, retryAfterSeconds: d.retryAfterSeconds };
          if (!d.allowed) return { ...result, valid: false, code: 'rate-limited' as const };
        }
      }
      const admitted = meter.admit(key, VERIFY_ROUTE, cost);
      const admission = admitted instanceof Promise ? await admitted : admitted;
      if (admission) {
        result.quota = { limit: admission.limit, remaining: Math.max(0, admission.limit - admission.used), resetsAt: admission.resetsAt.toISOString() };
        if (!admission.allowed) return { ...result, valid: false, code: 'quota-exceeded' as const };
      }
      return result;
    },
  });
}
