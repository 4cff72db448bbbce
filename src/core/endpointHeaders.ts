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
export function sealHeaders<V extends string | null>(key: KeyObject, endpointId: string, headers: Record<string, V>): Record<string, V> {
  return Object.fromEntries(Object.entries(headers).map(([name, value]) => [name, value === null ? null : sealSecret(key, value, boundTo(endpointId, name))])) as Record<string, V>;
}

export function openHeaders(key: KeyObject, endpointId: string, sealed: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(sealed).map(([name, value]) => [name, openSecret(key, value, boundTo(endpointId, name))]));
}

/** Whether a stored value is sealed for this endpoint and header (values stored before sealing began are not). */
export function isSealedHeader(key: KeyObject, endpointId: string, name: string, value: string): boolean {
  try {
    openSecret(key, value, boundTo(endpointId, name));
    return true;
  } catch {
    return false;
  }
}

const boundTo = (endpointId: string, name: string): string => `${endpointId}:header:${name}`;

/** What the API shows of them: the values of the others, only the names of the sensitive ones. */
export function shownHeaders(headers: Record<string, string>): { headers: Record<string, string>; sensitiveHeaders: string[] } {
  const entries = Object.entries(headers);
  return {
    headers: Object.fromEntries(entries.filter(([name]) => !isSensitiveHeader(name))),
    sensitiveHeaders: entries.filter(([name]) => isSensitiveHeader(name)).map(([name]) => name),
  };
}

/** The header names after a merge patch (see EndpointPatch): those set are added, those null removed. */
export function namesAfterPatch(current: readonly string[], patch: Record<string, string | null>): string[] {
  const names = new Set(current);
  for (const [name, value] of Object.entries(patch)) {
    if (value === null) names.delete(name);
    else names.add(name);
  }
  return [...names];
}
