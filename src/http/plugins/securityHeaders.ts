import fp from 'fastify-plugin';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Pages meant to be embedded in other sites' frames (the embeddable dashboard) set this. */
    frameable?: boolean;
  }
}

/** Served with everything but the docs UI, which sets its own (src/http/app.ts). */
export const DEFAULT_CSP = "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
export const HSTS = 'max-age=31536000; includeSubDomains';

/**
 * Security headers on every response. Written by hand rather than with
 * @fastify/helmet: the set is small and constant, and helmet runs two hooks
 * and its middleware chain per request to produce it.
 */
export const securityHeadersPlugin = fp<{ tls: boolean }>(
  async (app, { tls }) => {
    app.addHook('onRequest', (request, reply, done) => {
      reply.header('x-content-type-options', 'nosniff');
      reply.header('referrer-policy', 'no-referrer');
      reply.header('content-security-policy', DEFAULT_CSP);
      if (!request.routeOptions.config?.frameable) reply.header('x-frame-options', 'DENY');
      if (tls) reply.header('strict-transport-security', HSTS);
      // API answers may carry secrets (a created key): no cache may keep them.
      if (request.url.startsWith('/v1/')) reply.header('cache-control', 'no-store');
      done();
    });
  },
  { name: 'portcullis-security-headers', fastify: '5.x' },
);
