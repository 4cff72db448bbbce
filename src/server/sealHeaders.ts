import type { KeyObject } from 'node:crypto';
import { isSealedHeader, sealHeaders } from '../core/endpointHeaders.ts';
import type { Store } from '../storage/store.ts';

/**
 * Endpoint header values stored before values were sealed (migration 0009 kept
 * them in clear) are sealed at startup, each endpoint's in one statement; its
 * `updatedAt` stays. Sealed values are left alone, so this is a no-op after the
 * first start, and two processes doing it at once only seal a value twice.
 */
export async function sealPlainEndpointHeaders(store: Store, key: KeyObject): Promise<number> {
  let endpoints = 0;
  for (const endpoint of await store.endpoints.all()) {
    const plain = Object.entries(endpoint.headers).filter(([name, value]) => !isSealedHeader(key, endpoint.id, name, value));
    if (plain.length === 0) continue;
    await store.endpoints.update(endpoint.id, { headers: sealHeaders(key, endpoint.id, Object.fromEntries(plain)) }, endpoint.updatedAt);
    endpoints++;
  }
  return endpoints;
}
