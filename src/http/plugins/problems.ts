import fp from 'fastify-plugin';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { PROBLEMS, Problem, isProblem } from '../../core/problems.ts';
import type { ProblemCode } from '../../core/problems.ts';
import { InvalidCursorError, StoreUnavailableError } from '../../storage/store.ts';

/** Seconds a client should wait before retrying after a 503. */
export const STORE_UNAVAILABLE_RETRY_AFTER_S = 5;
export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

export function problemType(code: ProblemCode): string {
  return `/docs/problems#${code}`;
}

export function sendProblem(request: FastifyRequest, reply: FastifyReply, problem: Problem): FastifyReply {
  const body = {
    type: problemType(problem.code),
    title: PROBLEMS[problem.code].title,
    status: problem.status,
    detail: problem.detail,
    code: problem.code,
    requestId: request.id,
    ...problem.extensions,
  };
  for (const [name, value] of Object.entries(problem.headers)) reply.header(name, value);
  // A string payload skips the route's response serializer.
  return reply.code(problem.status).type(PROBLEM_CONTENT_TYPE).send(JSON.stringify(body));
}

// Fastify's own error codes, as problems.
const FASTIFY_CODES: Record<string, ProblemCode> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'payload-too-large',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'unsupported-media-type',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'malformed-request',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'malformed-request',
  FST_ERR_CTP_INVALID_JSON_BODY: 'malformed-request',
  FST_ERR_BAD_URL: 'malformed-request',
  // The router refuses a path parameter over its length limit before the route's
  // schema sees it; to the caller it is the same failed validation.
  FST_ERR_MAX_PARAM_LENGTH: 'validation-failed',
};
// Details for codes whose Fastify message echoes the path, which may hold a secret.
const FASTIFY_DETAILS: Record<string, string> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'request body is larger than the limit',
  FST_ERR_BAD_URL: 'the path is not validly encoded',
  FST_ERR_MAX_PARAM_LENGTH: 'a path parameter is longer than allowed',
};

interface ValidationIssue {
  instancePath: string;
  message?: string;
  keyword: string;
  params: Record<string, unknown>;
}

function describeValidation(err: FastifyError): { detail: string; errors: { field: string; message: string }[] } {
  const context = (err as FastifyError & { validationContext?: string }).validationContext ?? 'body';
  const errors = ((err.validation ?? []) as ValidationIssue[]).map((v) => {
    const extra = v.keyword === 'additionalProperties' ? `/${String(v.params.additionalProperty)}` : '';
    const field = `${context}${v.instancePath}${extra}`.replaceAll('/', '.');
    const message = v.keyword === 'additionalProperties' ? 'is not a known field' : (v.message ?? 'is invalid');
    return { field, message };
  });
  const first = errors[0];
  return { detail: first ? `${first.field} ${first.message}` : 'request is invalid', errors };
}

export function toProblem(err: unknown): Problem {
  if (isProblem(err)) return err;
  if (err instanceof StoreUnavailableError) {
    return new Problem('store-unavailable', { headers: { 'retry-after': String(STORE_UNAVAILABLE_RETRY_AFTER_S) } });
  }
  if (err instanceof InvalidCursorError) return new Problem('invalid-cursor');
  const e = err as FastifyError;
  if (e.validation) {
    const { detail, errors } = describeValidation(e);
    return new Problem('validation-failed', { detail, extensions: { errors } });
  }
  const mapped = e.code ? FASTIFY_CODES[e.code] : undefined;
  if (mapped) {
    // Parser messages are generic and echo no body content, so they are safe to pass on.
    return new Problem(mapped, { detail: FASTIFY_DETAILS[e.code!] ?? e.message });
  }
  if (e instanceof SyntaxError || (e.statusCode === 400 && e.code?.startsWith('FST_ERR_CTP'))) {
    return new Problem('malformed-request', { detail: 'body is not valid JSON' });
  }
  return new Problem('internal', { detail: 'unexpected error' });
}

/** Renders every error as application/problem+json (RFC 9457), and unknown routes as 404. */
export const problemsPlugin = fp(
  async (app) => {
    app.setErrorHandler((err, request, reply) => {
      const problem = toProblem(err);
      if (problem.code === 'internal') request.log.error({ err }, 'unhandled error');
      else if (problem.code === 'store-unavailable') request.log.warn({ cause: (err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : undefined }, 'store unavailable');
      return sendProblem(request, reply, problem);
    });
    app.setNotFoundHandler((request, reply) => sendProblem(request, reply, new Problem('not-found', { detail: `no route ${request.method} ${request.url.split('?')[0]}` })));
  },
  { name: 'portcullis-problems', fastify: '5.x' },
);

/**
 * Requests the HTTP parser refuses before Fastify sees them (headers over 16 KiB,
 * a malformed request line, a request that never finished arriving) get a
 * problem too, with a request id that is also in the log line.
 */
export function clientErrorProblem(err: NodeJS.ErrnoException, requestId: string): string {
  const code: ProblemCode = err.code === 'HPE_HEADER_OVERFLOW' ? 'headers-too-large' : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 'request-timeout' : 'malformed-request';
  const { status, title } = PROBLEMS[code];
  const body = JSON.stringify({ type: problemType(code), title, status, detail: title, code, requestId });
  return `HTTP/1.1 ${status} ${title}\r\nContent-Type: ${PROBLEM_CONTENT_TYPE}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nX-Request-Id: ${requestId}\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n${body}`;
}
