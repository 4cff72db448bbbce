import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { KeyObject } from 'node:crypto';

/**
 * Secrets that must be recoverable (source and endpoint HMAC secrets) are
 * stored encrypted with AES-256-GCM under a key derived from the root secret.
 * Format: `v1.<base64url iv>.<base64url ciphertext>.<base64url tag>`. The
 * associated data binds a ciphertext to the record it belongs to, so one
 * record's secret cannot be pasted into another's row.
 */
const VERSION = 'v1';
const IV_BYTES = 12;

export function sealSecret(key: KeyObject, plaintext: string, boundTo: string): string {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(boundTo));
  const data = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return [VERSION, iv.toString('base64url'), data.toString('base64url'), cipher.getAuthTag().toString('base64url')].join('.');
}

/** Throws when the box was altered, sealed under another key, or bound to another record. */
export function openSecret(key: KeyObject, sealed: string, boundTo: string): string {
  const [version, iv, data, tag] = sealed.split('.');
  if (version !== VERSION || !iv || data === undefined || !tag) throw new Error('not a sealed secret');
  const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'));
  decipher.setAAD(Buffer.from(boundTo));
  decipher.setAuthTag(Buffer.from(tag, 'base64url'));
  return Buffer.concat([decipher.update(Buffer.from(data, 'base64url')), decipher.final()]).toString('utf8');
}
