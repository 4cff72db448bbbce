import { randomBytes } from 'node:crypto';
import { Type } from 'typebox';
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { randomBase62 } from '../../core/base62.ts';
import { ID_PREFIX, newId } from '../../core/ids.ts';
import { Problem } from '../../core/problems.ts';
import { openSecret, sealSecret } from '../../core/secretBox.ts';
import type { SourceType } from '../../ingest/verify/index.ts';
import type { SourcePatch, SourceRecord } from '../../storage/store.ts';
import { SlugTakenError } from '../../storage/store.ts';
import { emptyBodyAsDefaults } from '../plugins/routeHooks.ts';
import { checkMetadata, checkRateLimitPolicy } from './bodyChecks.ts';
import type { Services } from '../services.ts';
import { AUTH_PROBLEMS, BODY_PROBLEMS, IdParams, ListQuery, POST_PROBLEMS, curlExample, problemResponses } from '../schemas/common.ts';
import {
  CreateSourceBody,
  PROVIDER_SECRET_TYPES,
  RevealedSecret,
  RotateSourceSecretBody,
  SOURCE_BODY_LIMIT_DEFAULT,
  SOURCE_BODY_LIMIT_GITHUB,
  SOURCE_DEDUP_DEFAULT_S,
  Source,
  SourceList,
  SourceWithSecret,
  UpdateSourceBody,
} from '../schemas/sources.ts';
import type { SourceResponse } from '../schemas/sources.ts';

const EXAMPLE_ID = 'src_01jdx3m5a8q2v7k4r9t6w1y3zb';

/** A fresh secret in the form the provider's senders expect. */
function generateSecret(type: SourceType): string {
  return type === 'standard-webhooks' ? `whsec_${randomBytes(24).toString('base64')}` : randomBase62(40);
}

function present(source: SourceRecord): SourceResponse {
  return {
    id: source.id,
    slug: source.slug,
    name: source.name,
    type: source.type as SourceResponse['type'],
    url: `/in/${source.slug ?? source.id}`,
    dedupWindowSeconds: source.dedupWindowSeconds,
    bodyLimit: source.bodyLimit,
    rateLimitPolicy: source.rateLimitPolicy,
    rateLimitMode: source.rateLimitMode,
    generic: source.generic,
    metadata: source.metadata,
    previousSecretExpiresAt: source.previousSecretExpiresAt?.toISOString() ?? null,
    createdAt: source.createdAt.toISOString(),
    updatedAt: source.updatedAt.toISOString(),
  };
}

/** `/v1/sources`: inbound endpoints, their secrets (sealed at rest, shown at creation and by reveal-secret only). */
export function registerSourceRoutes(app: FastifyInstance, services: Services): void {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();
  const { store, clock, secretsKey } = services;

  const notFound = (id: string): Problem => new Problem('not-found', { detail: `no source ${id}` });
  const slugTaken = (slug: string): Problem => new Problem('conflict', { detail: `the slug ${slug} is taken by another source` });
  const checkPolicy = (name: string | null | undefined): void => checkRateLimitPolicy(services.config, name);
  async function load(id: string): Promise<SourceRecord> {
    // Management routes take the id only; the slug is for the public URL.
    const source = id.startsWith(`${ID_PREFIX.source}_`) ? await store.sources.find(id) : null;
    if (!source) throw notFound(id);
    return source;
  }

  r.post('/v1/sources', {
    config: { scope: 'sources:write', secretResponse: true },
    schema: {
      operationId: 'createSource',
      tags: ['sources'],
      summary: 'Create a source',
      description:
        'Creates an inbound endpoint at `/in/<slug or id>` verified by the given provider protocol, and returns its secret once. Stripe, Shopify and Slack generate their signing secrets: pass them as `secret`.' +
        curlExample('POST', '/v1/sources', { name: 'GitHub main org', slug: 'github-main', type: 'github' }),
      body: CreateSourceBody,
      response: { 201: SourceWithSecret, ...problemResponses(...AUTH_PROBLEMS, ...BODY_PROBLEMS, ...POST_PROBLEMS, 'conflict', 'idempotency-secret-not-replayed') },
    },
    handler: async (request, reply) => {
      const body = request.body;
      const type = body.type as SourceType;
      if ((PROVIDER_SECRET_TYPES as readonly string[]).includes(type) && body.secret === undefined) {
        throw new Problem('validation-failed', { detail: `body.secret is required for ${type}: paste the signing secret ${type} generated` });
      }
      if ((type === 'generic') !== (body.generic !== undefined)) {
        throw new Problem('validation-failed', { detail: type === 'generic' ? 'body.generic is required for a generic source' : 'body.generic is only for generic sources' });
      }
      checkPolicy(body.rateLimitPolicy);
      checkMetadata(body.metadata);
      const id = newId(ID_PREFIX.source);
      const secret = body.secret ?? generateSecret(type);
      try {
        const source = await store.sources.create({
          id,
          slug: body.slug ?? null,
          name: body.name,
          type,
          secretSealed: sealSecret(secretsKey, secret, id),
          dedupWindowSeconds: body.dedupWindowSeconds ?? SOURCE_DEDUP_DEFAULT_S,
          bodyLimit: body.bodyLimit ?? (type === 'github' ? SOURCE_BODY_LIMIT_GITHUB : SOURCE_BODY_LIMIT_DEFAULT),
          rateLimitPolicy: body.rateLimitPolicy ?? null,
          rateLimitMode: (body.rateLimitMode as 'reject' | 'throttle' | undefined) ?? 'reject',
          generic: body.generic ?? null,
          metadata: body.metadata ?? {},
          now: clock(),
        });
        request.log.info({ event: 'source.created', sourceId: id, type }, 'source created');
        return reply.code(201).header('location', `/v1/sources/${id}`).send({ ...present(source), secret });
      } catch (err) {
        if (err instanceof SlugTakenError) throw slugTaken(body.slug!);
        throw err;
      }
    },
  });

  r.get('/v1/sources', {
    config: { scope: 'sources:read' },
    schema: {
      operationId: 'listSources',
      tags: ['sources'],
      summary: 'List sources',
      description: 'Sources in creation order, a page at a time. Secrets are never listed.' + curlExample('GET', '/v1/sources?limit=50'),
      querystring: ListQuery,
      response: { 200: SourceList, ...problemResponses(...AUTH_PROBLEMS, 'validation-failed', 'invalid-cursor') },
    },
    handler: async (request) => {
      const page = await store.sources.list({ limit: request.query.limit, cursor: request.query.cursor ?? null });
      return { data: page.data.map(present), nextCursor: page.nextCursor };
    },
  });

  r.get('/v1/sources/:id', {
    config: { scope: 'sources:read' },
    schema: {
      operationId: 'getSource',
      tags: ['sources'],
      summary: 'Get a source',
      description: 'One source, without its secret.' + curlExample('GET', `/v1/sources/${EXAMPLE_ID}`),
      params: IdParams,
      response: { 200: Source, ...problemResponses(...AUTH_PROBLEMS, 'not-found') },
    },
    handler: async (request) => present(await load(request.params.id)),
  });

  r.patch('/v1/sources/:id', {
    config: { scope: 'sources:write' },
    schema: {
      operationId: 'updateSource',
      tags: ['sources'],
      summary: 'Update a source',
      description: 'Changes its name, slug, dedup window, body limit, rate limit or metadata. The secret changes only by rotate-secret.' + curlExample('PATCH', `/v1/sources/${EXAMPLE_ID}`, { dedupWindowSeconds: 86400 }),
      params: IdParams,
      body: UpdateSourceBody,
      response: { 200: Source, ...problemResponses(...AUTH_PROBLEMS, ...BODY_PROBLEMS, 'not-found', 'conflict') },
    },
    handler: async (request) => {
      const existing = await load(request.params.id);
      const body = request.body;
      if (body.generic !== undefined && existing.type !== 'generic') throw new Problem('validation-failed', { detail: 'body.generic is only for generic sources' });
      checkPolicy(body.rateLimitPolicy);
      checkMetadata(body.metadata);
      const patch: SourcePatch = { ...body, rateLimitMode: body.rateLimitMode as SourcePatch['rateLimitMode'] };
      try {
        const source = await store.sources.update(existing.id, patch, clock());
        services.sourceCache.clear();
        if (!source) throw notFound(request.params.id);
        request.log.info({ event: 'source.updated', sourceId: source.id, fields: Object.keys(body) }, 'source updated');
        return present(source);
      } catch (err) {
        if (err instanceof SlugTakenError) throw slugTaken(body.slug!);
        throw err;
      }
    },
  });

  r.delete('/v1/sources/:id', {
    config: { scope: 'sources:write' },
    schema: {
      operationId: 'deleteSource',
      tags: ['sources'],
      summary: 'Delete a source',
      description: 'Its URL stops accepting deliveries at once (404). Events already received stay.' + curlExample('DELETE', `/v1/sources/${EXAMPLE_ID}`),
      params: IdParams,
      response: { 204: Type.Null({ description: 'Deleted.' }), ...problemResponses(...AUTH_PROBLEMS, 'not-found') },
    },
    handler: async (request, reply) => {
      const source = await load(request.params.id);
      if (!(await store.sources.delete(source.id))) throw notFound(request.params.id);
      services.sourceCache.clear();
      request.log.info({ event: 'source.deleted', sourceId: source.id }, 'source deleted');
      return reply.code(204).send(null);
    },
  });

  r.post('/v1/sources/:id/reveal-secret', {
    config: { scope: 'sources:write', secretResponse: true },
    schema: {
      operationId: 'revealSourceSecret',
      tags: ['sources'],
      summary: "Reveal a source's secret",
      description: 'Returns the current secret (and, during a rotation, the previous one). Needs `sources:write`; every reveal is logged.' + curlExample('POST', `/v1/sources/${EXAMPLE_ID}/reveal-secret`),
      params: IdParams,
      response: { 200: RevealedSecret, ...problemResponses(...AUTH_PROBLEMS, ...POST_PROBLEMS, 'not-found', 'idempotency-secret-not-replayed') },
    },
    handler: async (request) => {
      const source = await load(request.params.id);
      const live = source.previousSecretExpiresAt !== null && source.previousSecretExpiresAt > clock();
      request.log.warn({ event: 'source.secret.revealed', sourceId: source.id, keyId: request.auth?.keyId }, 'source secret revealed');
      return {
        secret: openSecret(secretsKey, source.secretSealed, source.id),
        previousSecret: live && source.previousSecretSealed ? openSecret(secretsKey, source.previousSecretSealed, source.id) : null,
        previousSecretExpiresAt: live ? source.previousSecretExpiresAt!.toISOString() : null,
      };
    },
  });

  r.post('/v1/sources/:id/rotate-secret', {
    config: { scope: 'sources:write', secretResponse: true },
    schema: {
      operationId: 'rotateSourceSecret',
      tags: ['sources'],
      summary: "Rotate a source's secret",
      description:
        'Sets a new secret (given, or generated) and keeps accepting the previous one for `gracePeriodSeconds`, so you can change it at the provider without losing deliveries.' +
        curlExample('POST', `/v1/sources/${EXAMPLE_ID}/rotate-secret`, { gracePeriodSeconds: 86400 }),
      params: IdParams,
      body: RotateSourceSecretBody,
      'x-optional-body': true,
      response: { 200: SourceWithSecret, ...problemResponses(...AUTH_PROBLEMS, ...BODY_PROBLEMS, ...POST_PROBLEMS, 'not-found', 'idempotency-secret-not-replayed') },
    },
    preValidation: emptyBodyAsDefaults,
    handler: async (request) => {
      const source = await load(request.params.id);
      const now = clock();
      const grace = request.body.gracePeriodSeconds ?? 0;
      const secret = request.body.secret ?? generateSecret(source.type as SourceType);
      const rotated = await store.sources.rotateSecret({
        id: source.id,
        secretSealed: sealSecret(secretsKey, secret, source.id),
        previousSecretSealed: grace > 0 ? source.secretSealed : null,
        previousExpiresAt: grace > 0 ? new Date(now.getTime() + grace * 1000) : null,
        now,
      });
      if (!rotated) throw notFound(request.params.id);
      services.sourceCache.clear();
      request.log.info({ event: 'source.secret.rotated', sourceId: source.id, gracePeriodSeconds: grace }, 'source secret rotated');
      return { ...present(rotated), secret };
    },
  });
}
