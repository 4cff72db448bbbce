import { createHmac, randomBytes } from 'node:crypto';

/** A new endpoint secret as Standard Webhooks and Svix receivers expect it: `whsec_` + base64 of 24 random bytes. */
export function newEndpointSecret(): string {
  return `whsec_${randomBytes(24).toString('base64')}`;
}

function keyOf(secret: string): Buffer {
  return Buffer.from(secret.startsWith('whsec_') ? secret.slice(6) : secret, 'base64');
}

/**
 * The Standard Webhooks `webhook-signature` header: `v1,<base64 HMAC-SHA256 of
 * id.timestamp.body>` for each secret (during a rotation, the new one and the
 * old one), space-separated. Signed at each attempt, with that attempt's time.
 */
export function webhookSignature(secrets: readonly string[], id: string, timestampSeconds: number, body: Buffer): string {
  return secrets
    .map((secret) => `v1,${createHmac('sha256', keyOf(secret)).update(`${id}.${timestampSeconds}.`).update(body).digest('base64')}`)
    .join(' ');
}
