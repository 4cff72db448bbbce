import { timingSafeEqual } from 'node:crypto';
import { contentHash, field, parseJson } from './crypto.ts';
import type { Verifier } from './types.ts';
import { reject } from './types.ts';

const sameText = (a: string, b: string): boolean => {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
};

/**
 * Hugging Face: no signature — the secret itself arrives in `X-Webhook-Secret`
 * (compared in constant time). Type: `event.scope` + `event.action`
 * (`repo.content.update`). No delivery id is sent: dedup on a content hash.
 */
export const verifyHuggingface: Verifier = (request, { secrets }) => {
  const given = request.headers['x-webhook-secret'];
  if (!given) return reject('missing-signature', 'X-Webhook-Secret is missing');
  if (!secrets.some((secret) => sameText(secret, given))) return reject('bad-signature', 'X-Webhook-Secret does not match');
  const payload = parseJson(request.body);
  const scope = field(payload, 'event', 'scope');
  const action = field(payload, 'event', 'action');
  if (typeof scope !== 'string' || typeof action !== 'string' || !/^[a-z.]+$/.test(`${scope}.${action}`)) {
    return reject('malformed-body', 'the body is not a Hugging Face event (event.scope, event.action)');
  }
  return { ok: true, type: `${scope}.${action}`, deliveryId: null, dedupKey: contentHash(request.body) };
};
