import Fastify, { LogController } from 'fastify';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { Ajv } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { newId, ID_PREFIX } from '../core/ids.ts';
import { problemsPlugin } from './plugins/problems.ts';
import { authPlugin } from './plugins/auth.ts';
import { idempotencyPlugin } from './plugins/idempotency.ts';
import { observePlugin } from './plugins/observe.ts';
import { registerKeyRoutes } from './routes/keys.ts';
import { registerSystemRoutes } from './routes/system.ts';
import type { Services } from './services.ts';

export const REQUEST_ID_HEADER = 'x-request-id';
export const API_VERSION = '0.1.0';

// ajv-formats ships CommonJS with a default export the ESM loader wraps once more.
const addFormats = ((addFormatsModule as unknown as { default?: typeof addFormatsModule }).default ?? addFormatsModule) as unknown as (ajv: Ajv) => Ajv;

function makeAjv(coerceTypes: boolean): Ajv {
  // Bodies: unknown fields are errors (never silently removed) and types are never coerced.
  // Query strings are text by nature, so only they are coerced ("5" -> 5 for `limit`).
  const ajv = new Ajv({ coerceTypes, removeAdditional: false, useDefaults: true, allErrors: false, strict: false });
  addFormats(ajv);
  return ajv;
}

/** Builds the HTTP app on the given services. Used by `serve` and by the tests. */
export interface AppOptions {
  /** Serve HTTPS with this PEM certificate and key. */
  https?: { cert: Buffer; key: Buffer };
}

export async function buildApp(services: Services, options: AppOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({
    ...(options.https ? { https: options.https } : {}),
    loggerInstance: services.logger as FastifyBaseLogger,
    // Our observe plugin writes the one line per request; Fastify's own two are off.
    logController: new LogController({ disableRequestLogging: true, requestIdLogLabel: 'requestId' }),
    genReqId: () => newId(ID_PREFIX.request),
    requestIdHeader: false,
    bodyLimit: services.config.bodyLimit,
    forceCloseConnections: 'idle',
    return503OnClosing: true,
  });

  const strict = makeAjv(false);
  const coercing = makeAjv(true);
  app.setValidatorCompiler(({ schema, httpPart }) => (httpPart === 'querystring' ? coercing : strict).compile(schema));
  // JSON only: a text/plain body on a JSON route is a 415, not a string that fails validation.
  app.removeContentTypeParser('text/plain');

  app.addHook('onRequest', async (request, reply) => {
    reply.header(REQUEST_ID_HEADER, request.id);
  });

  await app.register(problemsPlugin);
  await app.register(swagger, {
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
        { name: 'system', description: 'Health, readiness and metrics.' },
      ],
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs', uiConfig: { deepLinking: true }, staticCSP: true });
  await app.register(authPlugin, { services });
  await app.register(idempotencyPlugin, { services });
  await app.register(observePlugin, { services });

  registerSystemRoutes(app, services);
  registerKeyRoutes(app, services);
  return app;
}
