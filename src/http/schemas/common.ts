import { Type } from 'typebox';
import { LIST_LIMIT_DEFAULT, LIST_LIMIT_MAX } from '../../core/cursor.ts';
import { PROBLEMS } from '../../core/problems.ts';
import type { ProblemCode } from '../../core/problems.ts';
import { PROBLEM_CONTENT_TYPE } from '../plugins/problems.ts';

export const Timestamp = Type.String({ format: 'date-time', description: 'RFC 3339 time in UTC.', examples: ['2026-11-22T10:00:00.000Z'] });
export const NullableTimestamp = Type.Union([Timestamp, Type.Null()]);
export const Metadata = Type.Record(Type.String(), Type.Unknown(), {
  additionalProperties: true,
  maxProperties: 50,
  description: 'Free-form JSON object you attach (at most 50 properties, 8 KiB).',
  examples: [{ plan: 'pro' }],
});
/** Largest serialised metadata object accepted, in bytes. */
export const METADATA_MAX_BYTES = 8 * 1024;

export const ListQuery = Type.Object(
  {
    limit: Type.Integer({ minimum: 1, maximum: LIST_LIMIT_MAX, default: LIST_LIMIT_DEFAULT, description: `Page size (default ${LIST_LIMIT_DEFAULT}, at most ${LIST_LIMIT_MAX}).` }),
    cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 2048, description: 'The `nextCursor` of the previous page.' })),
  },
  { additionalProperties: false },
);

export const IdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 100 }) }, { additionalProperties: false });

export const ProblemSchema = Type.Object(
  {
    type: Type.String({ description: 'URI reference to /docs/problems#<code>.' }),
    title: Type.String(),
    status: Type.Integer(),
    detail: Type.String(),
    code: Type.String({ enum: Object.keys(PROBLEMS) }),
    requestId: Type.String(),
  },
  { additionalProperties: true, description: 'RFC 9457 problem details (application/problem+json).' },
);

/** OpenAPI responses for the problems a route can answer with. */
export function problemResponses(...codes: ProblemCode[]): Record<number, unknown> {
  const out: Record<number, unknown> = {};
  for (const code of codes) {
    const { status, title } = PROBLEMS[code];
    const existing = out[status] as { description: string } | undefined;
    // Named by media type, so the document says application/problem+json, also on routes that produce text.
    out[status] = { description: existing ? `${existing.description}; ${title}` : title, content: { [PROBLEM_CONTENT_TYPE]: { schema: ProblemSchema } } };
  }
  return out;
}

/** Problems every authenticated route can answer with (rate limits and quotas apply to all of them). */
export const AUTH_PROBLEMS: ProblemCode[] = ['unauthorized', 'scope-missing', 'rate-limited', 'quota-exceeded', 'rate-limiter-unavailable', 'store-unavailable'];
/** And every route with a JSON body. */
export const BODY_PROBLEMS: ProblemCode[] = ['malformed-request', 'validation-failed', 'payload-too-large', 'unsupported-media-type'];
export const POST_PROBLEMS: ProblemCode[] = ['idempotency-in-flight', 'idempotency-mismatch'];

/** A curl example for the route's OpenAPI description. */
export function curlExample(method: string, path: string, body?: unknown): string {
  const lines = [`curl -X ${method} "$PORTCULLIS_URL${path}"`, '  -H "Authorization: Bearer $PORTCULLIS_API_KEY"'];
  if (body !== undefined) lines.push('  -H "Content-Type: application/json"', `  -d '${JSON.stringify(body)}'`);
  return `\n\nExample:\n\n\`\`\`sh\n${lines.join(' \\\n')}\n\`\`\``;
}
