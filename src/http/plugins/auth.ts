import fp from 'fastify-plugin';
import type { FastifyRequest } from 'fastify';
import { Problem } from '../../core/problems.ts';
import { holdsScope } from '../../core/scopes.ts';
import type { ApiKeyRecord } from '../../storage/store.ts';
import type { Services } from '../services.ts';
import { hookArray } from './routeHooks.ts';

export interface AuthContext {
  keyId: string;
  scopes: string[];
  key: ApiKeyRecord;
}

declare module 'fastify' {
  interface FastifyRequest {
    auth: AuthContext | null;
  }
  interface FastifyContextConfig {
    /**
     * The scope a route needs, or `false` for a public route. Every route under
     * /v1 must say which; a route that does not fails at startup.
     */
    scope?: string | false;
  }
}

const BEARER = /^Bearer +([^\s]+)$/i;
const REASON_DETAIL = {
  missing: 'send an API key as "Authorization: Bearer <key>"',
  malformed: 'the API key is malformed',
  unknown: 'the API key is not known',
  rotated: 'the API key was rotated and its grace period has ended',
  revoked: 'the API key has been revoked',
  expired: 'the API key has expired',
} as const;

function unauthorized(reason: keyof typeof REASON_DETAIL): Problem {
  return new Problem('unauthorized', { detail: REASON_DETAIL[reason], headers: { 'www-authenticate': 'Bearer realm="portcullis"' } });
}

/** The caller's auth context; only on routes that declare a scope. */
export function caller(request: FastifyRequest): AuthContext {
  if (!request.auth) throw new Error('route has no auth context');
  return request.auth;
}

/**
 * API key authentication and scope checks, declared per route with
 * `config.scope`. Runs in onRequest, before the body is read, so a caller
 * without a valid key learns nothing about the route's schema.
 */
export const authPlugin = fp<{ services: Services }>(
  async (app, { services }) => {
    app.decorateRequest('auth', null);

    app.addHook('onRoute', (route) => {
      const scope = route.config?.scope;
      if (route.url.startsWith('/v1/') && scope === undefined) throw new Error(`route ${route.method} ${route.url} declares no scope`);
      if (typeof scope === 'string' && !services.scopes.isKnown(scope)) throw new Error(`route ${route.url} declares unknown scope ${scope}`);
      if (typeof scope !== 'string') return;
      route.schema ??= {};
      const schema = route.schema as Record<string, unknown>;
      schema.security = [{ apiKey: [] }];
      schema['x-required-scope'] = scope;
      // The HEAD route Fastify adds for a GET shares its schema object, so this runs twice on it.
      const note = `Requires scope \`${scope}\` (or \`admin\`).`;
      const description = String(schema.description ?? '');
      if (!description.endsWith(note)) schema.description = `${description}\n\n${note}`.trim();

      const onRequest = async (request: FastifyRequest) => {
        const header = request.headers.authorization;
        let reason: keyof typeof REASON_DETAIL;
        if (!header) reason = 'missing';
        else {
          const match = BEARER.exec(header);
          if (!match) reason = 'malformed';
          else {
            const result = await services.verifier.verify(match[1]!);
            if (result.ok) {
              if (!holdsScope(result.key.scopes, scope)) {
                services.metrics.authFailures.inc({ reason: 'scope' });
                throw new Problem('scope-missing', { detail: `this operation needs the scope ${scope}`, extensions: { scope } });
              }
              request.auth = { keyId: result.key.id, scopes: result.key.scopes, key: result.key };
              return;
            }
            reason = result.reason;
          }
        }
        services.metrics.authFailures.inc({ reason });
        throw unauthorized(reason);
      };
      route.onRequest = [onRequest, ...hookArray(route.onRequest)];
    });
  },
  { name: 'portcullis-auth', fastify: '5.x' },
);
