import type { Static } from 'typebox';
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { ID_PREFIX, newId } from '../../core/ids.ts';
import { Problem } from '../../core/problems.ts';
import { ADMIN_SCOPE, holdsScope, missingScopes, normalizeScopes } from '../../core/scopes.ts';
import type { ScopeCatalog } from '../../core/scopes.ts';
import { issueSecret } from '../../keys/issue.ts';
import type { ApiKeyPatch, ApiKeyRecord, KeyQuota } from '../../storage/store.ts';
import { caller } from '../plugins/auth.ts';
import { checkMetadata, checkRateLimitPolicy } from './bodyChecks.ts';
import { emptyBodyAsDefaults } from '../plugins/routeHooks.ts';
import type { Services } from '../services.ts';
import { AUTH_PROBLEMS, BODY_PROBLEMS, IdParams, ListQuery, POST_PROBLEMS, curlExample, problemResponses } from '../schemas/common.ts';
import { CreateKeyBody, Key, KeyList, KeyWithSecret, RotateKeyBody, UpdateKeyBody } from '../schemas/keys.ts';


const iso = (d: Date | null): string | null => (d ? d.toISOString() : null);

function present(key: ApiKeyRecord, now: Date): Static<typeof Key> {
  const status = key.revokedAt ? 'revoked' : key.expiresAt && key.expiresAt <= now ? 'expired' : 'active';
  return {
    id: key.id,
    name: key.name,
    customer: key.customer,
    metadata: key.metadata,
    scopes: key.scopes,
    prefix: key.prefix,
    status,
    createdBy: key.createdBy,
    createdAt: key.createdAt.toISOString(),
    updatedAt: key.updatedAt.toISOString(),
    expiresAt: iso(key.expiresAt),
    revokedAt: iso(key.revokedAt),
    rotatedAt: iso(key.rotatedAt),
    rateLimitPolicy: key.rateLimitPolicy,
    quota: key.quota,
  };
}

function parseQuota(value: { limit: number; softLimit?: number | null } | null | undefined): KeyQuota | null | undefined {
  if (!value) return value;
  const softLimit = value.softLimit ?? null;
  if (softLimit !== null && softLimit >= value.limit) throw new Problem('validation-failed', { detail: 'body.quota.softLimit must be below body.quota.limit' });
  return { limit: value.limit, softLimit };
}

function parseExpiry(value: string | null | undefined, now: Date): Date | null | undefined {
  if (value === undefined || value === null) return value;
  const at = new Date(value);
  if (at <= now) throw new Problem('validation-failed', { detail: 'body.expiresAt must be in the future' });
  return at;
}

/** A caller may grant only scopes it holds, and only scopes this server knows. */
function checkGrant(granted: string[], wanted: string[], catalog: ScopeCatalog): void {
  const unknown = wanted.filter((s) => !catalog.isKnown(s));
  if (unknown.length > 0) throw new Problem('validation-failed', { detail: `body.scopes: unknown scope ${unknown.join(', ')}` });
  const missing = missingScopes(granted, wanted);
  if (missing.length > 0) {
    throw new Problem('scope-missing', { detail: `cannot grant scopes you do not hold: ${missing.join(', ')}`, extensions: { scope: missing[0], scopes: missing } });
  }
}

export function registerKeyRoutes(app: FastifyInstance, services: Services): void {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();
  const { store, verifier, clock } = services;

  function checkPolicy(name: string | null | undefined): string | null | undefined {
    checkRateLimitPolicy(services.config, name);
    return name;
  }

  /** A key a caller may change: it exists, and the caller holds every scope it has. */
  async function loadForChange(callerScopes: string[], id: string): Promise<ApiKeyRecord> {
    const key = await store.keys.get(id);
    if (!key) throw new Problem('not-found', { detail: `no key ${id}` });
    const missing = missingScopes(callerScopes, key.scopes);
    if (missing.length > 0) {
      throw new Problem('scope-missing', { detail: `key ${id} holds scopes you do not: ${missing.join(', ')}`, extensions: { scope: missing[0], scopes: missing } });
    }
    return key;
  }

  r.post('/v1/keys', {
    config: { scope: 'keys:write', secretResponse: true },
    schema: {
      operationId: 'createKey',
      tags: ['keys'],
      summary: 'Create an API key',
      description:
        'Creates a key with the given scopes and returns its secret once. You can grant only scopes your own key holds.' +
        curlExample('POST', '/v1/keys', { name: 'acme-production', customer: 'acme', scopes: ['keys:read'] }),
      body: CreateKeyBody,
      response: { 201: KeyWithSecret, ...problemResponses(...AUTH_PROBLEMS, ...BODY_PROBLEMS, ...POST_PROBLEMS, 'idempotency-secret-not-replayed') },
    },
    handler: async (request, reply) => {
      const me = caller(request);
      const body = request.body;
      const now = clock();
      const scopes = normalizeScopes(body.scopes);
      checkGrant(me.scopes, scopes, services.scopes);
      checkMetadata(body.metadata);
      const expiresAt = parseExpiry(body.expiresAt, now) ?? null;
      const issued = issueSecret(services.apiKeyPepper);
      const key = await store.keys.create({
        id: newId(ID_PREFIX.key),
        name: body.name,
        customer: body.customer ?? null,
        metadata: body.metadata ?? {},
        scopes,
        prefix: issued.prefix,
        secretHash: issued.hash,
        createdBy: me.keyId,
        expiresAt,
        rateLimitPolicy: checkPolicy(body.rateLimitPolicy) ?? null,
        quota: parseQuota(body.quota) ?? null,
        now,
      });
      request.log.info({ event: 'key.created', targetKeyId: key.id, scopes }, 'key created');
      return reply.code(201).header('location', `/v1/keys/${key.id}`).send({ ...present(key, now), secret: issued.secret });
    },
  });

  r.get('/v1/keys', {
    config: { scope: 'keys:read' },
    schema: {
      operationId: 'listKeys',
      tags: ['keys'],
      summary: 'List API keys',
      description: 'Keys in creation order, a page at a time. Secrets are never listed, only their prefixes.' + curlExample('GET', '/v1/keys?limit=50'),
      querystring: ListQuery,
      response: {
        200: KeyList,
        ...problemResponses(...AUTH_PROBLEMS, 'validation-failed', 'invalid-cursor'),
      },
    },
    handler: async (request) => {
      const now = clock();
      const page = await store.keys.list({ limit: request.query.limit, cursor: request.query.cursor ?? null });
      return { data: page.data.map((k) => present(k, now)), nextCursor: page.nextCursor };
    },
  });

  r.get('/v1/keys/:id', {
    config: { scope: 'keys:read' },
    schema: {
      operationId: 'getKey',
      tags: ['keys'],
      summary: 'Get an API key',
      description: 'One key, without its secret.' + curlExample('GET', '/v1/keys/key_01jdx3m5a8q2v7k4r9t6w1y3zb'),
      params: IdParams,
      response: { 200: Key, ...problemResponses(...AUTH_PROBLEMS, 'not-found') },
    },
    handler: async (request) => {
      const key = await store.keys.get(request.params.id);
      if (!key) throw new Problem('not-found', { detail: `no key ${request.params.id}` });
      return present(key, clock());
    },
  });

  r.patch('/v1/keys/:id', {
    config: { scope: 'keys:write' },
    schema: {
      operationId: 'updateKey',
      tags: ['keys'],
      summary: 'Update an API key',
      description:
        "Changes a key's name, customer, metadata, scopes, expiry, rate-limit policy or quota. You can change only keys whose scopes you hold, and grant only scopes you hold; a key cannot change its own rate-limit policy or quota unless it holds `admin`. Takes effect on the next request." +
        curlExample('PATCH', '/v1/keys/key_01jdx3m5a8q2v7k4r9t6w1y3zb', { scopes: ['keys:read', 'keys:write'] }),
      params: IdParams,
      body: UpdateKeyBody,
      response: { 200: Key, ...problemResponses(...AUTH_PROBLEMS, ...BODY_PROBLEMS, 'not-found') },
    },
    handler: async (request) => {
      const me = caller(request);
      const body = request.body;
      const now = clock();
      await loadForChange(me.scopes, request.params.id);
      // Limits are what a key is sold with: it may not lift its own.
      if ((body.rateLimitPolicy !== undefined || body.quota !== undefined) && request.params.id === me.keyId && !holdsScope(me.scopes, ADMIN_SCOPE)) {
        throw new Problem('scope-missing', { detail: 'changing your own rate-limit policy or quota needs admin', extensions: { scope: ADMIN_SCOPE } });
      }
      const patch: ApiKeyPatch = {};
      if (body.name !== undefined) patch.name = body.name;
      if (body.customer !== undefined) patch.customer = body.customer;
      if (body.metadata !== undefined) (checkMetadata(body.metadata), (patch.metadata = body.metadata));
      if (body.scopes !== undefined) {
        patch.scopes = normalizeScopes(body.scopes);
        checkGrant(me.scopes, patch.scopes, services.scopes);
      }
      if (body.expiresAt !== undefined) patch.expiresAt = parseExpiry(body.expiresAt, now) ?? null;
      if (body.rateLimitPolicy !== undefined) patch.rateLimitPolicy = checkPolicy(body.rateLimitPolicy) ?? null;
      if (body.quota !== undefined) patch.quota = parseQuota(body.quota) ?? null;
      const key = await store.keys.update(request.params.id, patch, now);
      if (!key) throw new Problem('not-found', { detail: `no key ${request.params.id}` });
      verifier.forget(key.id);
      request.log.info({ event: 'key.updated', targetKeyId: key.id, fields: Object.keys(patch) }, 'key updated');
      return present(key, now);
    },
  });

  r.post('/v1/keys/:id/revoke', {
    config: { scope: 'keys:write' },
    schema: {
      operationId: 'revokeKey',
      tags: ['keys'],
      summary: 'Revoke an API key',
      description:
        'Revokes a key for good: refused on the next request here, within a second in every other process. Revoking a revoked key changes nothing.' +
        curlExample('POST', '/v1/keys/key_01jdx3m5a8q2v7k4r9t6w1y3zb/revoke'),
      params: IdParams,
      response: { 200: Key, ...problemResponses(...AUTH_PROBLEMS, ...POST_PROBLEMS, 'not-found') },
    },
    handler: async (request) => {
      const me = caller(request);
      const now = clock();
      await loadForChange(me.scopes, request.params.id);
      const key = await store.keys.revoke(request.params.id, now);
      if (!key) throw new Problem('not-found', { detail: `no key ${request.params.id}` });
      verifier.forget(key.id);
      request.log.info({ event: 'key.revoked', targetKeyId: key.id }, 'key revoked');
      return present(key, now);
    },
  });

  r.post('/v1/keys/:id/rotate', {
    config: { scope: 'keys:write', secretResponse: true },
    schema: {
      operationId: 'rotateKey',
      tags: ['keys'],
      summary: 'Rotate an API key',
      description:
        "Gives the key a new secret, returned once. The key keeps its id, scopes and metadata; the previous secret keeps working for `gracePeriodSeconds`, then stops." +
        curlExample('POST', '/v1/keys/key_01jdx3m5a8q2v7k4r9t6w1y3zb/rotate', { gracePeriodSeconds: 3600 }),
      params: IdParams,
      body: RotateKeyBody,
      'x-optional-body': true,
      response: { 200: KeyWithSecret, ...problemResponses(...AUTH_PROBLEMS, ...BODY_PROBLEMS, ...POST_PROBLEMS, 'not-found', 'conflict', 'idempotency-secret-not-replayed') },
    },
    preValidation: emptyBodyAsDefaults,
    handler: async (request) => {
      const me = caller(request);
      const now = clock();
      const current = await loadForChange(me.scopes, request.params.id);
      if (current.revokedAt) throw new Problem('conflict', { detail: `key ${current.id} is revoked and cannot be rotated` });
      const grace = request.body.gracePeriodSeconds ?? 0;
      const previousExpiresAt = new Date(now.getTime() + grace * 1000);
      const issued = issueSecret(services.apiKeyPepper);
      const key = await store.keys.rotate({ id: current.id, prefix: issued.prefix, secretHash: issued.hash, previousExpiresAt, now });
      if (!key) throw new Problem('not-found', { detail: `no key ${request.params.id}` });
      verifier.forget(key.id);
      request.log.info({ event: 'key.rotated', targetKeyId: key.id, gracePeriodSeconds: grace }, 'key rotated');
      return { ...present(key, now), secret: issued.secret, previousSecretExpiresAt: previousExpiresAt.toISOString() };
    },
  });
}
