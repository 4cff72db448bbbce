import { createHmac, type KeyObject } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { encodeBase62, isBase62, randomBase62 } from './base62.ts';

/**
 * API key format, after GitHub's tokens: `pcl_` + 30 base62 characters of secret
 * (~178 bits) + 6 base62 characters of CRC32 over the secret. The checksum lets
 * us refuse a typo or a made-up key without touching the store, and the fixed
 * prefix lets secret scanners find leaked keys.
 */
export const API_KEY_PREFIX = 'pcl_';
export const API_KEY_SECRET_LENGTH = 30;
export const API_KEY_CHECKSUM_LENGTH = 6;
export const API_KEY_LENGTH = API_KEY_PREFIX.length + API_KEY_SECRET_LENGTH + API_KEY_CHECKSUM_LENGTH;
/** Characters of a key kept in clear for display: `pcl_` + 8 of the secret. */
export const API_KEY_DISPLAY_LENGTH = API_KEY_PREFIX.length + 8;

function checksum(secret: string): string {
  return encodeBase62(crc32(secret), API_KEY_CHECKSUM_LENGTH);
}

export function generateApiKey(): string {
  const secret = randomBase62(API_KEY_SECRET_LENGTH);
  return API_KEY_PREFIX + secret + checksum(secret);
}

/** True when the string has the key format and a matching checksum. No store lookup. */
export function isWellFormedApiKey(key: string): boolean {
  if (key.length !== API_KEY_LENGTH || !key.startsWith(API_KEY_PREFIX)) return false;
  const body = key.slice(API_KEY_PREFIX.length);
  if (!isBase62(body)) return false;
  const secret = body.slice(0, API_KEY_SECRET_LENGTH);
  return body.slice(API_KEY_SECRET_LENGTH) === checksum(secret);
}

export function apiKeyDisplayPrefix(key: string): string {
  return key.slice(0, API_KEY_DISPLAY_LENGTH);
}

// Anything shaped like a key, checksum valid or not: a mistyped key is still mostly secret.
const API_KEY_LIKE = new RegExp(`${API_KEY_PREFIX}[0-9A-Za-z]+`, 'g');

/** The text with every key-shaped string replaced, for logging text a caller chose (a URL path). */
export function redactApiKeys(text: string): string {
  return text.replace(API_KEY_LIKE, `${API_KEY_PREFIX}[redacted]`);
}

/** Keys are stored only as HMAC-SHA256 under the pepper; a stolen table alone is useless. */
export function hashApiKey(key: string, pepper: KeyObject): string {
  return createHmac('sha256', pepper).update(key).digest('base64url');
}
