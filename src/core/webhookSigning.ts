import { createHmac, createSecretKey, randomBytes } from 'node:crypto';
import type { KeyObject } from 'node:crypto';

/** A new endpoint secret as Standard Webhooks and Svix receivers expect it: `whsec_` + base64 of 24 random bytes. */
export function newEndpointSecret(): string {
  return `whsec_${randomBytes(24).toString('base64')}`;
}

/** The HMAC key of a `whsec_` secret. A KeyObject, kept by callers that sign often: an HMAC keyed with one costs a fifth of one keyed with bytes. */
export function signingKey(secret: string): KeyObject {
  return createSecretKey(Buffer.from(secret.startsWith('whsec_') ? secret.slice(6) : secret, 'base64'));
}

/**
 * The Standard Webhooks `webhook-signature` header: `v1,<base64 HMAC-SHA256 of
 * id.timestamp.body>` for each key (during a rotation, the new secret's and the
 * old one's), space-separated. Signed at each attempt, with that attempt's time.
 */
export function webhookSignature(keys: readonly KeyObject[], id: string, timestampSeconds: number, body: Buffer): string {
  return keys
    .map((key) => `v1,${createHmac('sha256', key).update(`${id}.${timestampSeconds}.`).update(body).digest('base64')}`)
    .join(' ');
}
