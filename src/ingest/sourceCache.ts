import type { KeyObject } from 'node:crypto';
import { openSecret } from '../core/secretBox.ts';
import type { SourceRecord, SourceStore } from '../storage/store.ts';

/** How long a source looked up for `/in/` is trusted before it is read again (changes made on another instance show within this). */
export const SOURCE_CACHE_TTL_MS = 1000;
const SOURCE_CACHE_MAX = 1000;

export interface ReceivingSource {
  record: SourceRecord;
  secret: string;
  previousSecret: string | null;
}

/**
 * Sources as `/in/` needs them, with their secrets unsealed: a store read and an
 * AES-GCM open per delivery would otherwise cost more than verifying it. Changes
 * through this instance's API clear it at once; other instances' within the TTL.
 */
export interface SourceCache {
  get(idOrSlug: string): Promise<ReceivingSource | null>;
  clear(): void;
}

export function createSourceCache(store: SourceStore, secretsKey: KeyObject, now: () => number = Date.now): SourceCache {
  let entries = new Map<string, { source: ReceivingSource; until: number }>();
  let generation = 0;
  return {
    async get(idOrSlug) {
      const hit = entries.get(idOrSlug);
      if (hit && hit.until > now()) return hit.source;
      const started = generation;
      const record = await store.find(idOrSlug);
      if (!record) return null;
      const source = {
        record,
        secret: openSecret(secretsKey, record.secretSealed, record.id),
        previousSecret: record.previousSecretSealed ? openSecret(secretsKey, record.previousSecretSealed, record.id) : null,
      };
      // A change that cleared the cache while this read was in flight may not be in it.
      if (started === generation) {
        if (entries.size >= SOURCE_CACHE_MAX) entries = new Map();
        entries.set(idOrSlug, { source, until: now() + SOURCE_CACHE_TTL_MS });
      }
      return source;
    },
    clear() {
      generation++;
      entries = new Map();
    },
  };
}
