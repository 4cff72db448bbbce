import { isIP } from 'node:net';
import { Type } from 'typebox';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { ID_PREFIX, newId } from '../../core/ids.ts';
import { Problem } from '../../core/problems.ts';
import { isSensitiveHeader, namesAfterPatch, openHeaders, sealHeaders, shownHeaders } from '../../core/endpointHeaders.ts';
import { openSecret, sealSecret } from '../../core/secretBox.ts';
import { newEndpointSecret, signingKey } from '../../core/webhookSigning.ts';
import { sendAttempt } from '../../delivery/attempt.ts';
import { signingKeys } from '../../delivery/dispatcher.ts';
import { SsrfRefused } from '../../outbound/ssrf.ts';
import type { EndpointPatch, EndpointRecord } from '../../storage/deliveryStore.ts';
import { emptyBodyAsDefaults } from '../plugins/routeHooks.ts';
import { checkMetadata } from './bodyChecks.ts';
import type { Services } from '../services.ts';
import { AUTH_PROBLEMS, BODY_PROBLEMS, IdParams, ListQuery, POST_PROBLEMS, curlExample, problemResponses } from '../schemas/common.ts';
import {
  CreateEndpointBody,
  ENDPOINT_ROTATION_DEFAULT_GRACE_S,
  ENDPOINT_SECRET_MAX_BYTES,
  ENDPOINT_SECRET_MIN_BYTES,
  ENDPOINT_HEADERS_MAX,
  ENDPOINT_TIMEOUT_DEFAULT_S,
  Endpoint,
  EndpointList,
  EndpointWithSecret,
  RevealedEndpointSecret,
  RotateEndpointSecretBody,
  UpdateEndpointBody,
} from '../schemas/endpoints.ts';
import type { EndpointResponse } from '../schemas/endpoints.ts';
import { BULK_RETRY_DEFAULT, RecoverBody, RetryResult, TestAttempt } from '../schemas/deliveries.ts';

const EXAMPLE_ID = 'ep_01jdx3m5a8q2v7k4r9t6w1y3zb';

/**
 * How long creating an endpoint waits for its host name to resolve. A name that
 * does not resolve in time (or at all) is accepted: every delivery attempt checks
 * the address it connects to again, so the guard does not depend on this check.
 */
export const ENDPOINT_URL_CHECK_TIMEOUT_MS = 5000;

/**
 * Headers an endpoint may not set: hop-by-hop and framing ones (RFC 9110 §7.6.1),
 * and those each delivery sets itself (its body's type, our user agent, the
 * Standard Webhooks signature, and every `portcullis-*`).
 */
const RESERVED_HEADERS = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'host',
  'content-length',
  'content-type',
  'content-encoding',
  'expect',
  'user-agent',
  'webhook-id',
  'webhook-timestamp',
  'webhook-signature',
]);
const RESERVED_PREFIX = 'portcullis-';
// RFC 9110 §5.1 field names are tokens; values here are visible ASCII, spaces and tabs (no CR/LF: no header injection).
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const HEADER_VALUE = /^[\t\x20-\x7e]*$/;

const invalid = (detail: string): Problem => new Problem('validation-failed', { detail });

/**
 * Header names lower-cased (HTTP ignores their case, and a delivery's own headers
 * are lower-case), each checked; null (a PATCH removing one) passes as it is.
 */
function checkHeaders<V extends string | null>(headers: Record<string, V> | undefined): Record<string, V> | undefined {
  if (headers === undefined) return undefined;
  const out: Record<string, V> = {};
  for (const [name, value] of Object.entries(headers)) {
    const lower = name.toLowerCase();
    if (!HEADER_NAME.test(name)) throw invalid(`body.headers: ${JSON.stringify(name)} is not a valid header name`);
    if (RESERVED_HEADERS.has(lower) || lower.startsWith(RESERVED_PREFIX)) throw invalid(`body.headers: ${name} is set by Portcullis on each delivery and cannot be set by an endpoint`);
    if (value !== null && !HEADER_VALUE.test(value)) throw invalid(`body.headers.${name}: only visible ASCII characters, spaces and tabs are allowed`);
    if (Object.hasOwn(out, lower)) throw invalid(`body.headers: ${name} is given twice`);
    out[lower] = value;
  }
  return out;
}

/** `whsec_` and the canonical base64 of 24 to 64 bytes, as Standard Webhooks receivers decode it. */
function checkSecret(secret: string | undefined): void {
  if (secret === undefined) return;
  const encoded = secret.slice('whsec_'.length);
  const key = Buffer.from(encoded, 'base64');
  if (key.toString('base64') !== encoded || key.length < ENDPOINT_SECRET_MIN_BYTES || key.length > ENDPOINT_SECRET_MAX_BYTES) {
    throw invalid(`body.secret must be whsec_ followed by the base64 of ${ENDPOINT_SECRET_MIN_BYTES} to ${ENDPOINT_SECRET_MAX_BYTES} bytes`);
  }
}

/**
 * The URL as deliveries will use it (normalised by the WHATWG parser: `127.1` is
 * `127.0.0.1`), refused unless it is absolute http(s) without credentials.
 */
function parseUrl(raw: string): URL {
  // The parser forgives `http:host` and surrounding spaces; an endpoint URL is given exactly.
  if (!/^https?:\/\/[^\s]+$/i.test(raw)) throw invalid('body.url must be an absolute http:// or https:// URL');
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw invalid('body.url is not a valid URL');
  }
  if (url.username !== '' || url.password !== '') throw invalid('body.url must not contain credentials: send them in body.headers');
  return url;
}

/** `headers`: the endpoint's own headers, opened. */
function present(endpoint: EndpointRecord, headers: Record<string, string>, now: Date): EndpointResponse {
  const rotating = endpoint.previousSecretExpiresAt !== null && endpoint.previousSecretExpiresAt > now;
  return {
    id: endpoint.id,
    url: endpoint.url,
    description: endpoint.description,
    eventTypes: endpoint.eventTypes,
    sourceIds: endpoint.sourceIds,
    ...shownHeaders(headers),
    rateLimitPerSecond: endpoint.rateLimitPerSecond,
    timeoutSeconds: Math.round(endpoint.timeoutMs / 1000),
    retrySchedule: endpoint.retrySchedule,
    enabled: endpoint.enabled,
    disabledReason: endpoint.disabledReason,
    consecutiveFailures: endpoint.consecutiveFailures,
    failingSince: endpoint.failingSince?.toISOString() ?? null,
    metadata: endpoint.metadata,
    previousSecretExpiresAt: rotating ? endpoint.previousSecretExpiresAt!.toISOString() : null,
    createdAt: endpoint.createdAt.toISOString(),
    updatedAt: endpoint.updatedAt.toISOString(),
  };
}

/** `/v1/endpoints`: subscribers' HTTP endpoints, their secrets (sealed at rest, shown at creation and by reveal-secret only). */
export function registerEndpointRoutes(app: FastifyInstance, services: Services): void {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();
  const { store, clock, secretsKey } = services;

  const headersOf = (endpoint: EndpointRecord): Record<string, string> => openHeaders(secretsKey, endpoint.id, endpoint.headers);
  const show = (endpoint: EndpointRecord, now: Date): EndpointResponse => present(endpoint, headersOf(endpoint), now);
  const notFound = (id: string): Problem => new Problem('not-found', { detail: `no endpoint ${id}` });
  async function load(id: string): Promise<EndpointRecord> {
    const endpoint = id.startsWith(`${ID_PREFIX.endpoint}_`) ? await store.endpoints.get(id) : null;
    if (!endpoint) throw notFound(id);
    return endpoint;
  }

  /** Refuses a URL whose host is, or resolves to, an address the SSRF guard refuses. */
  async function checkDestination(url: URL, log: FastifyBaseLogger): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), ENDPOINT_URL_CHECK_TIMEOUT_MS);
    });
    try {
      const outcome = await Promise.race([services.outbound.check(url), timeout]);
      if (outcome === 'timeout') log.info({ event: 'endpoint.url.unresolved', host: url.hostname, reason: 'timeout' }, 'endpoint host did not resolve in time; deliveries check it again');
    } catch (err) {
      if (err instanceof SsrfRefused) {
        // The host only: the resolved addresses are internal facts, and a URL's path or query may hold secrets.
        const literal = isIP(err.host) !== 0;
        throw invalid(`body.url: ${url.hostname} ${literal ? 'is' : 'resolves to'} a ${err.range} address, which the SSRF guard refuses (an operator can allow its range with ssrfAllow)`);
      }
      // Not resolvable now: accepted, since every attempt resolves and checks again.
      log.info({ event: 'endpoint.url.unresolved', host: url.hostname, reason: (err as { code?: string }).code ?? 'error' }, 'endpoint host did not resolve; deliveries check it again');
    } finally {
      clearTimeout(timer);
    }
  }

  async function checkSources(ids: string[] | undefined): Promise<void> {
    for (const id of ids ?? []) {
      if (!(await store.sources.find(id))) throw invalid(`body.sourceIds: no source ${id}`);
    }
  }

  r.post('/v1/endpoints', {
    config: { scope: 'endpoints:write', secretResponse: true },
    schema: {
      operationId: 'createEndpoint',
      tags: ['endpoints'],
      summary: 'Create an endpoint',
      description:
        'Subscribes an HTTP endpoint to messages and inbound events, filtered by event type and source, and returns its signing secret (`whsec_…`) once. ' +
        'The URL is refused when its host is, or resolves to, a loopback, private, link-local or otherwise internal address (unless `ssrfAllow` opens its range); every delivery checks it again.' +
        curlExample('POST', '/v1/endpoints', { url: 'https://hooks.example.com/portcullis', eventTypes: ['github.push', 'github.pull_request.*'] }),
      body: CreateEndpointBody,
      response: { 201: EndpointWithSecret, ...problemResponses(...AUTH_PROBLEMS, ...BODY_PROBLEMS, ...POST_PROBLEMS, 'idempotency-secret-not-replayed') },
    },
    handler: async (request, reply) => {
      const body = request.body;
      const url = parseUrl(body.url);
      const headers = checkHeaders(body.headers);
      checkSecret(body.secret);
      checkMetadata(body.metadata);
      await checkSources(body.sourceIds);
      await checkDestination(url, request.log);
      const id = newId(ID_PREFIX.endpoint);
      const secret = body.secret ?? newEndpointSecret();
      const endpoint = await store.endpoints.create({
        id,
        url: url.href,
        description: body.description ?? '',
        eventTypes: body.eventTypes ?? [],
        sourceIds: body.sourceIds ?? [],
        headers: sealHeaders(secretsKey, id, headers ?? {}),
        rateLimitPerSecond: body.rateLimitPerSecond ?? null,
        timeoutMs: (body.timeoutSeconds ?? ENDPOINT_TIMEOUT_DEFAULT_S) * 1000,
        retrySchedule: body.retrySchedule ?? null,
        enabled: body.enabled ?? true,
        metadata: body.metadata ?? {},
        secretSealed: sealSecret(secretsKey, secret, id),
        now: clock(),
      });
      services.router.endpointsChanged();
      request.log.info({ event: 'endpoint.created', endpointId: id, host: url.hostname }, 'endpoint created');
      return reply.code(201).header('location', `/v1/endpoints/${id}`).send({ ...present(endpoint, headers ?? {}, clock()), secret });
    },
  });

  r.get('/v1/endpoints', {
    config: { scope: 'endpoints:read' },
    schema: {
      operationId: 'listEndpoints',
      tags: ['endpoints'],
      summary: 'List endpoints',
      description: 'Endpoints in creation order, a page at a time. Secrets are never listed.' + curlExample('GET', '/v1/endpoints?limit=50'),
      querystring: ListQuery,
      response: { 200: EndpointList, ...problemResponses(...AUTH_PROBLEMS, 'validation-failed', 'invalid-cursor') },
    },
    handler: async (request) => {
      const page = await store.endpoints.list({ limit: request.query.limit, cursor: request.query.cursor ?? null });
      const now = clock();
      return { data: page.data.map((e) => show(e, now)), nextCursor: page.nextCursor };
    },
  });

  r.get('/v1/endpoints/:id', {
    config: { scope: 'endpoints:read' },
    schema: {
      operationId: 'getEndpoint',
      tags: ['endpoints'],
      summary: 'Get an endpoint',
      description: 'One endpoint, without its secret: its filters, settings, whether it is enabled (and why not) and its current run of failures.' + curlExample('GET', `/v1/endpoints/${EXAMPLE_ID}`),
      params: IdParams,
      response: { 200: Endpoint, ...problemResponses(...AUTH_PROBLEMS, 'not-found') },
    },
    handler: async (request) => show(await load(request.params.id), clock()),
  });

  r.patch('/v1/endpoints/:id', {
    config: { scope: 'endpoints:write' },
    schema: {
      operationId: 'updateEndpoint',
      tags: ['endpoints'],
      summary: 'Update an endpoint',
      description:
        'Changes its URL (checked by the SSRF guard again), filters, headers (merged: null removes one), limits, retry schedule or metadata. A URL on another origin needs the write-only headers named again (or null) in the same request. `enabled: true` re-enables a disabled endpoint and clears `disabledReason` and its failure streak. The secret changes only by rotate-secret.' +
        curlExample('PATCH', `/v1/endpoints/${EXAMPLE_ID}`, { enabled: true }),
      params: IdParams,
      body: UpdateEndpointBody,
      response: { 200: Endpoint, ...problemResponses(...AUTH_PROBLEMS, ...BODY_PROBLEMS, 'not-found') },
    },
    handler: async (request) => {
      const existing = await load(request.params.id);
      const body = request.body;
      const url = body.url === undefined ? undefined : parseUrl(body.url);
      const headersPatch = checkHeaders(body.headers);
      const current = Object.keys(existing.headers);
      const names = headersPatch ? namesAfterPatch(current, headersPatch) : current;
      if (names.length > ENDPOINT_HEADERS_MAX) throw invalid(`body.headers: at most ${ENDPOINT_HEADERS_MAX} headers, and this change leaves ${names.length}`);
      // Write-only headers are the receiver's credentials: they do not follow the endpoint to another origin unasked.
      if (url && url.origin !== new URL(existing.url).origin) {
        const following = current.filter((name) => isSensitiveHeader(name) && !(headersPatch && Object.hasOwn(headersPatch, name)));
        if (following.length > 0) {
          throw invalid(`body.url: the new URL is on another origin, where the write-only headers (${following.join(', ')}) would go: give them again, or remove them (null), in the same request`);
        }
      }
      checkMetadata(body.metadata);
      await checkSources(body.sourceIds);
      if (url) await checkDestination(url, request.log);
      const { timeoutSeconds, headers: _headers, ...rest } = body;
      const patch: EndpointPatch = {
        ...rest,
        ...(url ? { url: url.href } : {}),
        ...(headersPatch ? { headers: sealHeaders(secretsKey, existing.id, headersPatch) } : {}),
        ...(timeoutSeconds !== undefined ? { timeoutMs: timeoutSeconds * 1000 } : {}),
      };
      const now = clock();
      const endpoint = await store.endpoints.update(existing.id, patch, now);
      if (!endpoint) throw notFound(request.params.id);
      services.router.endpointsChanged();
      const reenabled = body.enabled === true && !existing.enabled;
      request.log.info({ event: reenabled ? 'endpoint.enabled' : 'endpoint.updated', endpointId: endpoint.id, fields: Object.keys(body) }, reenabled ? 'endpoint re-enabled' : 'endpoint updated');
      // Its waiting deliveries resume now rather than at the next poll.
      if (reenabled) services.newDeliveries.notify();
      return show(endpoint, now);
    },
  });

  r.delete('/v1/endpoints/:id', {
    config: { scope: 'endpoints:write' },
    schema: {
      operationId: 'deleteEndpoint',
      tags: ['endpoints'],
      summary: 'Delete an endpoint',
      description: 'It gets no more deliveries, including those still waiting for a retry.' + curlExample('DELETE', `/v1/endpoints/${EXAMPLE_ID}`),
      params: IdParams,
      response: { 204: Type.Null({ description: 'Deleted.' }), ...problemResponses(...AUTH_PROBLEMS, 'not-found') },
    },
    handler: async (request, reply) => {
      const endpoint = await load(request.params.id);
      if (!(await store.endpoints.delete(endpoint.id, clock()))) throw notFound(request.params.id);
      services.router.endpointsChanged();
      request.log.info({ event: 'endpoint.deleted', endpointId: endpoint.id }, 'endpoint deleted');
      return reply.code(204).send(null);
    },
  });

  r.post('/v1/endpoints/:id/reveal-secret', {
    config: { scope: 'endpoints:write', secretResponse: true },
    schema: {
      operationId: 'revealEndpointSecret',
      tags: ['endpoints'],
      summary: "Reveal an endpoint's secret",
      description:
        'Returns the current signing secret (and, during a rotation, the previous one, which still signs deliveries beside it). Needs `endpoints:write`; every reveal is logged.' +
        curlExample('POST', `/v1/endpoints/${EXAMPLE_ID}/reveal-secret`),
      params: IdParams,
      response: { 200: RevealedEndpointSecret, ...problemResponses(...AUTH_PROBLEMS, ...POST_PROBLEMS, 'not-found', 'idempotency-secret-not-replayed') },
    },
    handler: async (request) => {
      const endpoint = await load(request.params.id);
      const live = endpoint.previousSecretExpiresAt !== null && endpoint.previousSecretExpiresAt > clock();
      request.log.warn({ event: 'endpoint.secret.revealed', endpointId: endpoint.id, keyId: request.auth?.keyId }, 'endpoint secret revealed');
      return {
        secret: openSecret(secretsKey, endpoint.secretSealed, endpoint.id),
        previousSecret: live && endpoint.previousSecretSealed ? openSecret(secretsKey, endpoint.previousSecretSealed, endpoint.id) : null,
        previousSecretExpiresAt: live ? endpoint.previousSecretExpiresAt!.toISOString() : null,
      };
    },
  });

  r.post('/v1/endpoints/:id/rotate-secret', {
    config: { scope: 'endpoints:write', secretResponse: true },
    schema: {
      operationId: 'rotateEndpointSecret',
      tags: ['endpoints'],
      summary: "Rotate an endpoint's secret",
      description:
        `Sets a new signing secret (given, or generated). For \`gracePeriodSeconds\` (default ${ENDPOINT_ROTATION_DEFAULT_GRACE_S} s, as Svix) every delivery carries two signatures, one with each secret, so the receiver can switch without rejecting any; afterwards only the new one.` +
        curlExample('POST', `/v1/endpoints/${EXAMPLE_ID}/rotate-secret`, { gracePeriodSeconds: 86400 }),
      params: IdParams,
      body: RotateEndpointSecretBody,
      'x-optional-body': true,
      response: { 200: EndpointWithSecret, ...problemResponses(...AUTH_PROBLEMS, ...BODY_PROBLEMS, ...POST_PROBLEMS, 'not-found', 'idempotency-secret-not-replayed') },
    },
    preValidation: emptyBodyAsDefaults,
    handler: async (request) => {
      const endpoint = await load(request.params.id);
      checkSecret(request.body.secret);
      const now = clock();
      const grace = request.body.gracePeriodSeconds ?? ENDPOINT_ROTATION_DEFAULT_GRACE_S;
      const secret = request.body.secret ?? newEndpointSecret();
      const rotated = await store.endpoints.rotateSecret({
        id: endpoint.id,
        secretSealed: sealSecret(secretsKey, secret, endpoint.id),
        previousSecretSealed: grace > 0 ? endpoint.secretSealed : null,
        previousExpiresAt: grace > 0 ? new Date(now.getTime() + grace * 1000) : null,
        now,
      });
      if (!rotated) throw notFound(request.params.id);
      services.router.endpointsChanged();
      request.log.info({ event: 'endpoint.secret.rotated', endpointId: endpoint.id, gracePeriodSeconds: grace }, 'endpoint secret rotated');
      return { ...show(rotated, now), secret };
    },
  });

  r.post('/v1/endpoints/:id/recover', {
    config: { scope: 'endpoints:write' },
    schema: {
      operationId: 'recoverEndpoint',
      tags: ['endpoints'],
      summary: 'Recover failed deliveries',
      description: 'Re-sends every dead delivery of the endpoint created since the given time (after an outage on its side).' + curlExample('POST', `/v1/endpoints/${EXAMPLE_ID}/recover`, { since: '2026-11-28T00:00:00Z' }),
      params: IdParams,
      body: RecoverBody,
      response: { 202: RetryResult, ...problemResponses(...AUTH_PROBLEMS, ...BODY_PROBLEMS, ...POST_PROBLEMS, 'not-found') },
    },
    handler: async (request, reply) => {
      const endpoint = await store.endpoints.get(request.params.id);
      if (!endpoint) throw new Problem('not-found', { detail: `no endpoint ${request.params.id}` });
      const filter = { endpointId: endpoint.id, subjectId: null, status: 'dead' as const, from: new Date(request.body.since), to: null, ids: null };
      const retried = await store.deliveries.retry(filter, request.body.limit ?? BULK_RETRY_DEFAULT, clock());
      request.log.info({ event: 'endpoint.recovered', endpointId: endpoint.id, since: request.body.since, retried }, 'endpoint recovery queued');
      services.newDeliveries.notify();
      return reply.code(202).send({ retried });
    },
  });

  r.post('/v1/endpoints/:id/test', {
    config: { scope: 'endpoints:write' },
    schema: {
      operationId: 'testEndpoint',
      tags: ['endpoints'],
      summary: 'Send a test event',
      description:
        'Sends a signed `portcullis.endpoint.test` message to this endpoint only, at once, and answers with the attempt (status code, latency, the start of the answer, error). ' +
        'The message and its delivery are stored like any other (the delivery succeeded, or is dead: a test is not retried, but can be retried by hand).' +
        curlExample('POST', `/v1/endpoints/${EXAMPLE_ID}/test`),
      params: IdParams,
      response: { 200: TestAttempt, ...problemResponses(...AUTH_PROBLEMS, ...POST_PROBLEMS, 'not-found') },
    },
    handler: async (request) => {
      const endpoint = await store.endpoints.get(request.params.id);
      if (!endpoint) throw new Problem('not-found', { detail: `no endpoint ${request.params.id}` });
      const now = clock();
      const id = newId(ID_PREFIX.message);
      const payload = Buffer.from(JSON.stringify({ type: 'portcullis.endpoint.test', timestamp: now.toISOString(), data: { endpointId: endpoint.id } }));
      const endpointHeaders = headersOf(endpoint);
      await store.messages.create({ id, eventType: 'portcullis.endpoint.test', payload, createdAt: now }, []);
      const res = await sendAttempt(services.outbound, {
        url: endpoint.url,
        keys: signingKeys(endpoint, (sealed) => signingKey(openSecret(services.secretsKey, sealed, endpoint.id)), now),
        webhookId: id,
        eventType: 'portcullis.endpoint.test',
        sourceId: null,
        body: payload,
        contentType: 'application/json',
        eventHeaders: {},
        endpointHeaders,
        timeoutMs: endpoint.timeoutMs,
        responseBodyMaxBytes: services.config.delivery.responseBodyMaxBytes,
        now,
      });
      const attempt = {
        attempt: 1,
        startedAt: now,
        finishedAt: clock(),
        statusCode: res.statusCode,
        latencyMs: res.latencyMs,
        responseBody: res.responseBody,
        error: res.error,
        outcome: res.ok ? ('succeeded' as const) : ('dead' as const),
      };
      const deliveryId = newId(ID_PREFIX.delivery);
      const delivery = { id: deliveryId, endpointId: endpoint.id, subjectKind: 'message' as const, subjectId: id, causeId: id, eventType: 'portcullis.endpoint.test', nextAttemptAt: now };
      await store.deliveries.recordSent(delivery, attempt, attempt.finishedAt);
      request.log.info({ event: 'endpoint.tested', endpointId: endpoint.id, deliveryId, statusCode: res.statusCode }, 'endpoint tested');
      return { ...attempt, startedAt: now.toISOString(), finishedAt: attempt.finishedAt.toISOString(), messageId: id, deliveryId };
    },
  });
}
