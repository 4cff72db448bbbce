import type { KeyObject } from 'node:crypto';
import { hashApiKey, isWellFormedApiKey } from '../core/apiKeys.ts';
import type { ApiKeyRecord, KeyStore } from '../storage/store.ts';

/**
 * How long a verified key is trusted without asking the store again. Revocation
 * and scope changes made in another process take effect within this time (the
 * contract says within 1 s); the process that made them drops its copy at once.
 */
export const KEY_CACHE_TTL_MS = 500;
export const KEY_CACHE_MAX_ENTRIES = 10_000;

export type Verification =
  | { ok: true; key: ApiKeyRecord }
  | { ok: false; reason: 'malformed' | 'unknown' | 'rotated' | 'revoked' | 'expired' };

interface Entry {
  key: ApiKeyRecord;
  secretExpiresAt: Date | null;
  fetchedAt: number;
}

export interface KeyVerifier {
  verify(token: string): Promise<Verification>;
  /** Drops cached copies of a key after a local change. */
  forget(keyId: string): void;
  /** Drops every cached key (another process changed one). */
  forgetAll(): void;
}

export function createKeyVerifier(store: KeyStore, pepper: KeyObject, clock: () => Date): KeyVerifier {
  const cache = new Map<string, Entry>();

  return {
    async verify(token) {
      // The checksum refuses typos and made-up keys before any hashing or lookup.
      if (!isWellFormedApiKey(token)) return { ok: false, reason: 'malformed' };
      const hash = hashApiKey(token, pepper);
      const now = clock();
      let entry = cache.get(hash);
      if (!entry || now.getTime() - entry.fetchedAt >= KEY_CACHE_TTL_MS || now.getTime() < entry.fetchedAt) {
        const found = await store.findBySecretHash(hash);
        if (!found) {
          cache.delete(hash);
          return { ok: false, reason: 'unknown' };
        }
        entry = { ...found, fetchedAt: now.getTime() };
        // Map keeps insertion order: re-insert so the oldest entry is evicted first.
        cache.delete(hash);
        if (cache.size >= KEY_CACHE_MAX_ENTRIES) cache.delete(cache.keys().next().value!);
        cache.set(hash, entry);
      }
      const { key, secretExpiresAt } = entry;
      if (secretExpiresAt && secretExpiresAt <= now) return { ok: false, reason: 'rotated' };
      if (key.revokedAt) return { ok: false, reason: 'revoked' };
      if (key.expiresAt && key.expiresAt <= now) return { ok: false, reason: 'expired' };
      return { ok: true, key };
    },
    forget(keyId) {
      for (const [hash, entry] of cache) if (entry.key.id === keyId) cache.delete(hash);
    },
    forgetAll() {
      cache.clear();
    },
  };
}
