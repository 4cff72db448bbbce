import { ageSeconds, contentHash, field, fromBase64, fromHex, hmac, parseJson, sameBytes } from './crypto.ts';
import type { Verifier } from './types.ts';
import { reject } from './types.ts';

/** "Any platform that signs with an HMAC": every part of the scheme is a setting. */
export interface GenericHmacOptions {
  /** Header carrying the signature, e.g. `x-signature`. */
  signatureHeader: string;
  algorithm: 'sha256' | 'sha512';
  encoding: 'hex' | 'base64';
  /** Text before the digest in the header, e.g. `sha256=`; empty for none. */
  prefix: string;
  /** Header carrying a Unix timestamp to check against `toleranceSeconds`; null for none. */
  timestampHeader: string | null;
  toleranceSeconds: number;
  /** What is signed: the body, or `<timestamp>.<body>`. */
  signedContent: 'body' | 'timestamp.body';
  /** Where the delivery id is: a header, or a dot path into the JSON body; else a content hash. */
  dedupHeader: string | null;
  dedupJsonPath: string | null;
  /** Where the event type is; else `message`. */
  typeHeader: string | null;
  typeJsonPath: string | null;
}

export const GENERIC_DEFAULTS: GenericHmacOptions = {
  signatureHeader: 'x-signature',
  algorithm: 'sha256',
  encoding: 'hex',
  prefix: '',
  timestampHeader: null,
  toleranceSeconds: 300,
  signedContent: 'body',
  dedupHeader: null,
  dedupJsonPath: null,
  typeHeader: null,
  typeJsonPath: null,
};

const pathValue = (body: Buffer, path: string | null): string | null => {
  if (!path) return null;
  const value = field(parseJson(body), ...path.split('.'));
  return typeof value === 'string' || typeof value === 'number' ? String(value) : null;
};

export function genericHmacVerifier(options: GenericHmacOptions): Verifier {
  return (request, { secrets, now }) => {
    const header = request.headers[options.signatureHeader];
    if (!header) return reject('missing-signature', `${options.signatureHeader} is missing`);
    if (!header.startsWith(options.prefix)) return reject('bad-signature', `${options.signatureHeader} does not start with ${options.prefix}`);
    const digest = header.slice(options.prefix.length);
    const received = options.encoding === 'hex' ? fromHex(digest) : fromBase64(digest);
    const timestamp = options.timestampHeader ? request.headers[options.timestampHeader] : undefined;
    const age = options.timestampHeader ? ageSeconds(timestamp, now) : 0;
    if (age === null) return reject('missing-signature', `${options.timestampHeader} is missing or not a number of seconds`);
    const parts = options.signedContent === 'timestamp.body' ? [`${timestamp ?? ''}.`, request.body] : [request.body];
    if (!received || !secrets.some((secret) => sameBytes(hmac(options.algorithm, secret, ...parts), received))) {
      return reject('bad-signature', `${options.signatureHeader} does not match`);
    }
    if (age > options.toleranceSeconds) return reject('stale-timestamp', `the timestamp is ${Math.round(age)} s away (tolerance ${options.toleranceSeconds} s)`);
    const deliveryId = (options.dedupHeader ? request.headers[options.dedupHeader] : undefined) ?? pathValue(request.body, options.dedupJsonPath);
    const type = (options.typeHeader ? request.headers[options.typeHeader] : undefined) ?? pathValue(request.body, options.typeJsonPath) ?? 'message';
    return { ok: true, type, deliveryId: deliveryId ?? null, dedupKey: deliveryId ?? contentHash(request.body) };
  };
}
