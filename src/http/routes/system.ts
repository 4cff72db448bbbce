import { Type } from 'typebox';
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { PROBLEMS } from '../../core/problems.ts';
import type { Services } from '../services.ts';
import { AUTH_PROBLEMS, curlExample, problemResponses } from '../schemas/common.ts';

const escapeHtml = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** The page problem `type` URIs point at: one anchor per problem code. */
function problemsPage(): string {
  const rows = Object.entries(PROBLEMS)
    .map(([code, p]) => `<section id="${code}"><h2>${escapeHtml(p.title)} <code>${code}</code></h2><p>HTTP ${p.status}. ${escapeHtml(p.description)}</p></section>`)
    .join('\n');
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Portcullis problem types</title></head><body><h1>Problem types</h1><p>Errors are <code>application/problem+json</code> (RFC 9457) with <code>type</code>, <code>title</code>, <code>status</code>, <code>detail</code>, <code>code</code> and <code>requestId</code>.</p>\n${rows}\n</body></html>`;
}

export function registerSystemRoutes(app: FastifyInstance, services: Services): void {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();

  r.get('/healthz', {
    config: { scope: false },
    schema: {
      operationId: 'healthz',
      tags: ['system'],
      summary: 'Liveness',
      description: 'The process is up. Needs no key.',
      response: { 200: Type.Object({ status: Type.Literal('ok') }) },
    },
    handler: async () => ({ status: 'ok' as const }),
  });

  r.get('/readyz', {
    config: { scope: false },
    schema: {
      operationId: 'readyz',
      tags: ['system'],
      summary: 'Readiness',
      description: 'The store is reachable and fully migrated. 503 names the failing check. Needs no key.',
      response: {
        200: Type.Object({ status: Type.Literal('ready'), checks: Type.Object({ store: Type.String() }) }),
        503: Type.Object({ status: Type.Literal('unavailable'), checks: Type.Object({ store: Type.String() }) }),
      },
    },
    handler: async (_request, reply) => {
      const check = await services.store.check();
      if (check.reachable && check.migrated) return { status: 'ready' as const, checks: { store: 'ok' } };
      return reply.code(503).send({ status: 'unavailable' as const, checks: { store: check.reachable ? 'not migrated' : 'unreachable' } });
    },
  });

  r.get('/metrics', {
    config: { scope: 'metrics:read' },
    schema: {
      operationId: 'metrics',
      tags: ['system'],
      summary: 'Prometheus metrics',
      description: 'Metrics in the Prometheus text format, all prefixed `portcullis_`.' + curlExample('GET', '/metrics'),
      produces: ['text/plain'],
      response: { 200: Type.String(), ...problemResponses(...AUTH_PROBLEMS) },
    },
    handler: async (_request, reply) => {
      return reply.type(services.metrics.registry.contentType).send(await services.metrics.registry.metrics());
    },
  });

  r.get('/openapi.json', {
    config: { scope: false },
    schema: { hide: true },
    handler: async () => app.swagger(),
  });

  const page = problemsPage();
  r.get('/docs/problems', {
    config: { scope: false },
    schema: { hide: true },
    handler: async (_request, reply) => reply.type('text/html; charset=utf-8').send(page),
  });
}
