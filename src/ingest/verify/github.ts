import { contentHash, field, fromHex, hmac, parseJson, sameBytes } from './crypto.ts';
import type { Verifier } from './types.ts';
import { reject } from './types.ts';

/**
 * GitHub: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>`.
 * Type: `X-GitHub-Event` plus the payload's `action` (`pull_request.opened`);
 * dedup on `X-GitHub-Delivery`, which a manual redelivery repeats.
 */
export const verifyGithub: Verifier = (request, { secrets }) => {
  const header = request.headers['x-hub-signature-256'];
  if (!header) return reject('missing-signature', 'X-Hub-Signature-256 is missing');
  const received = header.startsWith('sha256=') ? fromHex(header.slice(7)) : null;
  if (!received || !secrets.some((secret) => sameBytes(hmac('sha256', secret, request.body), received))) {
    return reject('bad-signature', 'X-Hub-Signature-256 does not match the body');
  }
  const event = request.headers['x-github-event'];
  if (!event || !/^[a-z_]+$/.test(event)) return reject('malformed-body', 'X-GitHub-Event is missing or invalid');
  // GitHub may send the payload form-encoded (`payload=<json>`) when the hook is set up that way.
  const form = request.headers['content-type']?.startsWith('application/x-www-form-urlencoded');
  const payload = parseJson(form ? Buffer.from(new URLSearchParams(request.body.toString('utf8')).get('payload') ?? '') : request.body);
  if (payload === null) return reject('malformed-body', 'the body is not JSON');
  const action = field(payload, 'action');
  const deliveryId = request.headers['x-github-delivery'] ?? null;
  return {
    ok: true,
    type: typeof action === 'string' && /^[a-z_]+$/.test(action) ? `${event}.${action}` : event,
    deliveryId,
    dedupKey: deliveryId ?? contentHash(request.body),
  };
};
