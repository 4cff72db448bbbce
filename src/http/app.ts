import Fastify, { LogController } from 'fastify';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import swagger from '@fastify/swagger';
import type { SwaggerTransformObject } from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { Ajv } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { newId, ID_PREFIX } from '../core/ids.ts';
import { refuseNulInJson } from './plugins/jsonBody.ts';
import { clientErrorProblem, problemsPlugin, sendProblem, toProblem } from './plugins/problems.ts';
import { authPlugin } from './plugins/auth.ts';
import { idempotencyPlugin } from './plugins/idempotency.ts';
import { observePlugin, observeRequest } from './plugins/observe.ts';
import { rateLimitPlugin } from './plugins/rateLimit.ts';
import { meteringPlugin } from './plugins/metering.ts';
import { corsPlugin } from './plugins/cors.ts';
import { securityHeadersPlugin } from './plugins/securityHeaders.ts';
import { registerKeyRoutes } from './routes/keys.ts';
import { registerKeyVerifyRoute } from './routes/keyVerify.ts';
import { registerUsageRoutes } from './routes/usage.ts';
import { registerSourceRoutes } from './routes/sources.ts';
import { registerEndpointRoutes } from './routes/endpoints.ts';
import { registerInboundRoutes } from './routes/inbound.ts';
import { registerEventRoutes } from './routes/events.ts';
import { registerConsumerGroupRoutes } from './routes/consumerGroups.ts';
import { registerMessageRoutes } from './routes/messages.ts';
import { registerDeliveryRoutes } from './routes/deliveries.ts';
import { registerProxyRoutes } from './routes/proxy.ts';
import { registerSystemRoutes } from './routes/system.ts';
import type { Services } from './services.ts';

export const REQUEST_ID_HEADER = 'x-request-id';
export const API_VERSION = '0.1.0';
/**
 * The docs page's Content-Security-Policy: the plugin's default without the
 * external hosts it allows (`https:` fonts and styles, the validator badge its
 * initializer already switches off) — the UI is served locally and loads nothing from elsewhere.
 */
const DOCS_CSP =
  "default-src 'self'; base-uri 'self'; font-src 'self' data:; frame-ancestors 'self'; img-src 'self' data:; object-src 'none'; script-src 'self'; script-src-attr 'none'; style-src 'self'; upgrade-insecure-requests;";

// ajv-formats ships CommonJS with a default export the ESM loader wraps once more.
const addFormats = ((addFormatsModule as unknown as { default?: typeof addFormatsModule }).default ?? addFormatsModule) as unknown as (ajv: Ajv) => Ajv;

function makeAjv(coerceTypes: boolean): Ajv {
  // Bodies: unknown fields are errors (never silently removed) and types are never coerced.
  // Query strings are text by nature, so only they are coerced ("5" -> 5 for `limit`).
  const ajv = new Ajv({ coerceTypes, removeAdditional: false, useDefaults: true, allErrors: false, strict: false });
  addFormats(ajv);
  return ajv;
}

const OPTIONAL_BODY = 'x-optional-body';

// @fastify/swagger marks every request body required; routes that take none say so with `x-optional-body`.
const markOptionalBodies: SwaggerTransformObject = (documentObject) => {
  const doc = ('openapiObject' in documentObject ? documentObject.openapiObject : documentObject.swaggerObject) as { paths?: Record<string, Record<string, unknown>> };
  for (const item of Object.values(doc.paths ?? {})) {
    for (const op of Object.values(item ?? {}) as Record<string, unknown>[]) {
      if (typeof op !== 'object' || op === null || !(OPTIONAL_BODY in op)) continue;
      delete op[OPTIONAL_BODY];
      if (op.requestBody) (op.requestBody as { required: boolean }).required = false;
    }
  }
  return doc;
};

/** Builds the HTTP app on the given services. Used by `serve` and by the tests. */
export interface AppOptions {
  /** Serve HTTPS with this PEM certificate and key. */
  https?: { cert: Buffer; key: Buffer };
  /** Only /healthz, /readyz, /metrics (and the docs): a worker process's port. */
  systemOnly?: boolean;
}

export async function buildApp(services: Services, options: AppOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({
    ...(options.https ? { https: options.https } : {}),
    loggerInstance: services.logger as FastifyBaseLogger,
    // Our observe plugin writes the one line per request; Fastify's own two are off.
    logController: new LogController({ disableRequestLogging: true, requestIdLogLabel: 'requestId' }),
    genReqId: () => newId(ID_PREFIX.request),
    requestIdHeader: false,
    // X-Forwarded-For is believed only from the configured proxies, and only as far as the last untrusted hop.
    trustProxy: services.config.trustProxy.length > 0 ? services.config.trustProxy : false,
    bodyLimit: services.config.bodyLimit,
    forceCloseConnections: 'idle',
    return503OnClosing: true,
    // Errors the router raises before any hook runs (a badly encoded path, an
    // over-long path parameter) are problems too, with their request id, and are
    // logged and counted like any other request.
    clientErrorHandler: (err: NodeJS.ErrnoException, socket) => {
      // A reset needs no answer; a socket already gone cannot take one.
      if (err.code === 'ECONNRESET' || socket.destroyed) return;
      const requestId = newId(ID_PREFIX.request);
      services.logger.info({ requestId, err: err.code ?? err.message }, 'request refused by the HTTP parser');
      if (socket.writable) socket.write(clientErrorProblem(err, requestId));
      socket.destroy();
    },
    frameworkErrors: (err, request, reply) => {
      reply.header(REQUEST_ID_HEADER, request.id);
      sendProblem(request, reply, toProblem(err));
      observeRequest(services, request, reply);
    },
  });

  const strict = makeAjv(false);
  const coercing = makeAjv(true);
  app.setValidatorCompiler(({ schema, httpPart }) => (httpPart === 'querystring' ? coercing : strict).compile(schema));
  // JSON only: a text/plain body on a JSON route is a 415, not a string that fails validation.
  app.removeContentTypeParser('text/plain');
  refuseNulInJson(app);

  // Hooks on every request take a callback, not a promise: cheaper on the hot path.
  app.addHook('onRequest', (request, reply, done) => {
    reply.header(REQUEST_ID_HEADER, request.id);
    done();
  });

  await app.register(problemsPlugin);
  await app.register(securityHeadersPlugin, { tls: Boolean(options.https) });
  await app.register(corsPlugin, { origins: services.config.corsOrigins, credentials: services.config.corsCredentials });
  await app.register(swagger, {
    transformObject: markOptionalBodies,
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Portcullis API',
        version: API_VERSION,
        description:
          'Self-hosted integration edge. Authenticate with `Authorization: Bearer <key>`; each operation names the scope it needs. Errors are RFC 9457 problems: see /docs/problems.',
      },
      components: {
        securitySchemes: { apiKey: { type: 'http', scheme: 'bearer', description: 'A Portcullis API key (`pcl_…`).' } },
      },
      tags: [
        { name: 'keys', description: 'API keys with scopes, expiry, rotation and revocation.' },
        { name: 'inbound', description: 'Where providers deliver webhooks.' },
        { name: 'events', description: 'Inbound events, their processing history, and replay.' },
        { name: 'sources', description: 'Inbound webhook endpoints: provider protocol, secret (sealed at rest), dedup window, body limit.' },
        { name: 'endpoints', description: 'Outbound webhook endpoints: URL (SSRF-checked), event-type and source filters, headers, limits, signing secret (sealed at rest).' },
        { name: 'usage', description: 'The metering ledger: requests and cost units per key, route and period.' },
        { name: 'system', description: 'Health, readiness and metrics.' },
      ],
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs', uiConfig: { deepLinking: true }, staticCSP: DOCS_CSP });
  await app.register(authPlugin, { services });
  await app.register(rateLimitPlugin, { services });
  await app.register(meteringPlugin, { services });
  await app.register(idempotencyPlugin, { services });
  await app.register(observePlugin, { services });

  registerSystemRoutes(app, services);
  // A worker process answers health, readiness and metrics only.
  if (options.systemOnly) return app;
  registerKeyRoutes(app, services);
  registerKeyVerifyRoute(app, services);
  registerUsageRoutes(app, services);
  registerSourceRoutes(app, services);
  await registerInboundRoutes(app, services);
  registerEventRoutes(app, services);
  registerConsumerGroupRoutes(app, services);
  registerEndpointRoutes(app, services);
  registerMessageRoutes(app, services);
  registerDeliveryRoutes(app, services);
  await registerProxyRoutes(app, services);
  return app;
}
