import type { KeyObject } from 'node:crypto';
import { openSecret, sealSecret } from './secretBox.ts';

/** Header names (lower-case) that carry credentials: their values are write-only in the API. */
const SENSITIVE = /auth|token|secret|key|pass|credential|session|cookie|signature/;

export function isSensitiveHeader(name: string): boolean {
  return SENSITIVE.test(name);
}

/**
 * An endpoint's own headers are stored with each value sealed (they often hold
 * the receiver's credentials: the URL may not), bound to the endpoint and the
 * header's name, so a value cannot be moved to another header or endpoint.
 */
export function sealHeaders(key: KeyObject, endpointId: string, headers: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).map(([name, value]) => [name, sealSecret(key, value, `${endpointId}:header:${name}`)]));
}

export function openHeaders(key: KeyObject, endpointId: string, sealed: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(sealed).map(([name, value]) => [name, openSecret(key, value, `${endpointId}:header:${name}`)]));
}

/** What the API shows of them: the values of the others, only the names of the sensitive ones. */
export function shownHeaders(headers: Record<string, string>): { headers: Record<string, string>; sensitiveHeaders: string[] } {
  const entries = Object.entries(headers);
  return {
    headers: Object.fromEntries(entries.filter(([name]) => !isSensitiveHeader(name))),
    sensitiveHeaders: entries.filter(([name]) => isSensitiveHeader(name)).map(([name]) => name),
  };
}

/**
 * A PATCH of the headers, as JSON Merge Patch (RFC 7396) does it: a value sets
 * the header, null removes it, a header not named is kept (so changing one
 * needs no knowledge of the write-only values of the others).
 */
export function mergeHeaders(current: Record<string, string>, patch: Record<string, string | null>): Record<string, string> {
  const out = { ...current };
  for (const [name, value] of Object.entries(patch)) {
    if (value === null) delete out[name];
    else out[name] = value;
  }
  return out;
}
