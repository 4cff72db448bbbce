import { ageSeconds, field, fromBase64, hmac, parseJson, sameBytes } from './crypto.ts';
import type { Verifier } from './types.ts';
import { reject } from './types.ts';

export const STANDARD_WEBHOOKS_TOLERANCE_S = 300;

/** The HMAC key of a `whsec_<base64>` secret (a secret without the prefix is taken as base64 too). */
export function standardWebhooksKey(secret: string): Buffer {
  return Buffer.from(secret.startsWith('whsec_') ? secret.slice(6) : secret, 'base64');
}

/**
 * Standard Webhooks (and Svix senders): `webhook-id`, `webhook-timestamp`,
 * `webhook-signature` = space-separated `v1,<base64 HMAC-SHA256 of id.timestamp.body>`;
 * other versions are skipped; ±5 min. Type: the payload's `type` when it has one.
 * Dedup on webhook-id, stable across the sender's retries.
 */
export const verifyStandardWebhooks: Verifier = (request, { secrets, now }) => {
  const id = request.headers['webhook-id'];
  const timestamp = request.headers['webhook-timestamp'];
  const header = request.headers['webhook-signature'];
  if (!id || !timestamp || !header) return reject('missing-signature', 'webhook-id, webhook-timestamp or webhook-signature is missing');
  const age = ageSeconds(timestamp, now);
  if (age === null) return reject('missing-signature', 'webhook-timestamp is not a number of seconds');
  const signatures = header
    .split(' ')
    .filter((s) => s.startsWith('v1,'))
    .map((s) => fromBase64(s.slice(3)))
    .filter((s): s is Buffer => s !== null);
  const matches = secrets.some((secret) => {
    const expected = hmac('sha256', standardWebhooksKey(secret), `${id}.${timestamp}.`, request.body);
    return signatures.some((sig) => sameBytes(expected, sig));
  });
  if (!matches) return reject('bad-signature', 'no v1 signature matches');
  if (age > STANDARD_WEBHOOKS_TOLERANCE_S) return reject('stale-timestamp', `the timestamp is ${Math.round(age)} s away (tolerance ${STANDARD_WEBHOOKS_TOLERANCE_S} s)`);
  const type = field(parseJson(request.body), 'type');
  return { ok: true, type: typeof type === 'string' && /^[A-Za-z0-9_.-]+$/.test(type) ? type : 'message', deliveryId: id, dedupKey: id };
};
