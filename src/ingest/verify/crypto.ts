import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { BinaryLike } from 'node:crypto';

export function hmac(algorithm: 'sha256' | 'sha512', key: BinaryLike, ...parts: (string | Buffer)[]): Buffer {
  const mac = createHmac(algorithm, key);
  for (const part of parts) mac.update(part);
  return mac.digest();
}

/** Constant-time comparison of a computed digest with a received one (any length). */
export function sameBytes(expected: Buffer, received: Buffer): boolean {
  return expected.length === received.length && timingSafeEqual(expected, received);
}

/** Decodes hex strictly: anything but an even run of hex digits is no digest at all. */
export function fromHex(text: string): Buffer | null {
  return /^(?:[0-9a-fA-F]{2})+$/.test(text) ? Buffer.from(text, 'hex') : null;
}

export function fromBase64(text: string): Buffer | null {
  return /^[A-Za-z0-9+/]+={0,2}$/.test(text) ? Buffer.from(text, 'base64') : null;
}

/** Dedup key for providers that send no delivery id. */
export function contentHash(body: Buffer): string {
  return `sha256:${createHash('sha256').update(body).digest('hex')}`;
}

/** Parses a JSON body; null when it is not JSON (for providers whose bodies must be). */
export function parseJson(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8')) as unknown;
  } catch {
    return null;
  }
}

export function field(value: unknown, ...path: string[]): unknown {
  let at = value;
  for (const key of path) {
    if (at === null || typeof at !== 'object') return undefined;
    at = (at as Record<string, unknown>)[key];
  }
  return at;
}

/** Whole seconds between a provider's timestamp and now, or null when it is not one. */
export function ageSeconds(timestamp: string | undefined, now: Date): number | null {
  if (!timestamp || !/^\d{1,12}$/.test(timestamp)) return null;
  return Math.abs(now.getTime() / 1000 - Number(timestamp));
}
