import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Problem } from '../../core/problems.ts';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Top-level body fields that may hold U+0000 (stored as bytes, such as a message's payload). */
    nulAllowedIn?: readonly string[];
  }
}

/** The path of the first string (value or key) holding U+0000, or null. */
function nulPath(value: unknown, path: string): string | null {
  if (typeof value === 'string') return value.includes('\u0000') ? path : null;
  if (value === null || typeof value !== 'object') return null;
  for (const [key, item] of Object.entries(value)) {
    const at = Array.isArray(value) ? `${path}[${key}]` : `${path}.${key}`;
    if (key.includes('\u0000')) return at;
    const found = nulPath(item, at);
    if (found !== null) return found;
  }
  return null;
}

/**
 * Fastify's JSON parser (with its prototype-poisoning checks), refusing U+0000
 * in strings: PostgreSQL text and jsonb cannot hold it, and SQLite would, so
 * the same request would be a 500 on one store and a 201 on the other.
 * Only bodies whose text holds the escape are walked.
 */
export function refuseNulInJson(app: FastifyInstance): void {
  const parse = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request: FastifyRequest, text: string | Buffer, done) => {
    parse(request, String(text), (err, body) => {
      if (err || !String(text).includes('\\u0000')) return done(err, body);
      const allowed = request.routeOptions.config.nulAllowedIn ?? [];
      const fields = body !== null && typeof body === 'object' && !Array.isArray(body) ? Object.entries(body) : [['', body] as const];
      for (const [field, value] of fields) {
        if (allowed.includes(field)) continue;
        const at = field.includes('\u0000') ? `body.${field}` : nulPath(value, field === '' ? 'body' : `body.${field}`);
        if (at !== null) return done(new Problem('validation-failed', { detail: `${at} contains U+0000, which is not accepted` }), undefined);
      }
      done(null, body);
    });
  });
}
