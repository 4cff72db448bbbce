/**
 * The only table of problem codes. Each code is documented at
 * `/docs/problems#<code>`; a test checks that every code here is.
 */
export const PROBLEMS = {
  'malformed-request': { status: 400, title: 'Malformed request', description: 'The body is not valid JSON, or the request cannot be parsed.' },
  'validation-failed': { status: 400, title: 'Validation failed', description: 'A field is missing, unknown, or of the wrong type. Types are never coerced.' },
  'invalid-cursor': { status: 400, title: 'Invalid cursor', description: 'The `cursor` was not issued by this server for this list.' },
  unauthorized: { status: 401, title: 'Unauthorized', description: 'No API key, or the key is malformed, unknown, revoked or expired.' },
  'signature-invalid': {
    status: 401,
    title: 'Signature invalid',
    description: "The delivery's signature is missing or does not match the source's secret, or its timestamp is outside the replay window (`reason` says which). Nothing was stored.",
  },
  'scope-missing': { status: 403, title: 'Scope not granted', description: 'The API key does not hold the scope this operation needs.' },
  'not-found': { status: 404, title: 'Not found', description: 'No such route, or no such resource.' },
  conflict: { status: 409, title: 'Conflict', description: 'The request conflicts with the current state of the resource.' },
  'idempotency-in-flight': { status: 409, title: 'Request in flight', description: 'A request with this Idempotency-Key is still being processed.' },
  'idempotency-secret-not-replayed': { status: 409, title: 'Response not replayable', description: 'The first response with this Idempotency-Key carried a secret, which is never stored; the created resource is named in the problem.' },
  'request-timeout': { status: 408, title: 'Request timeout', description: 'The request did not arrive in time.' },
  'headers-too-large': { status: 431, title: 'Request headers too large', description: 'The request line and headers exceed 16 KiB.' },
  'payload-too-large': { status: 413, title: 'Payload too large', description: 'The body exceeds the configured limit.' },
  'unsupported-media-type': { status: 415, title: 'Unsupported media type', description: 'Send `Content-Type: application/json`.' },
  'idempotency-mismatch': { status: 422, title: 'Idempotency-Key reused', description: 'This Idempotency-Key was used with a different request body.' },
  'rate-limited': { status: 429, title: 'Rate limit exceeded', description: 'A rate-limit policy refused the request. `Retry-After` says when to retry; the `policy` member names the policy.' },
  'quota-exceeded': {
    status: 429,
    title: 'Quota exceeded',
    description: "The API key has used its monthly quota. `Retry-After` says when the next month's quota begins.",
  },
  'rate-limiter-unavailable': {
    status: 503,
    title: 'Rate limiter unavailable',
    description: 'The shared rate-limit store (Redis) could not answer, and the policy fails closed. Retry shortly.',
  },
  'upstream-unavailable': { status: 502, title: 'Upstream unavailable', description: 'Proxy mode could not reach the upstream, or it broke the connection.' },
  'upstream-timeout': { status: 504, title: 'Upstream timeout', description: 'The upstream did not connect or answer within the proxy route\'s timeout.' },
  'store-unavailable': { status: 503, title: 'Store unavailable', description: 'The store cannot be reached. Retry later.' },
  internal: { status: 500, title: 'Internal error', description: 'An unexpected error. The request id identifies it in the logs.' },
} as const;

export type ProblemCode = keyof typeof PROBLEMS;

export interface ProblemOptions {
  detail?: string;
  /** Extra members merged into the problem body (RFC 9457 extensions). */
  extensions?: Record<string, unknown>;
  headers?: Record<string, string>;
}

export class Problem extends Error {
  readonly code: ProblemCode;
  readonly status: number;
  readonly detail: string;
  readonly extensions: Record<string, unknown>;
  readonly headers: Record<string, string>;

  constructor(code: ProblemCode, options: ProblemOptions = {}) {
    const entry = PROBLEMS[code];
    super(options.detail ?? entry.title);
    this.name = 'Problem';
    this.code = code;
    this.status = entry.status;
    this.detail = options.detail ?? entry.title;
    this.extensions = options.extensions ?? {};
    this.headers = options.headers ?? {};
  }
}

export function isProblem(err: unknown): err is Problem {
  return err instanceof Problem;
}
