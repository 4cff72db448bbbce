import { randomFillSync } from 'node:crypto';
import { ulid } from 'ulid';

/** Resource id prefixes: one home for every prefix the API hands out. */
export const ID_PREFIX = {
  key: 'key',
  source: 'src',
  event: 'evt',
  job: 'job',
  consumerGroup: 'cgr',
  message: 'msg',
  delivery: 'dlv',
  endpoint: 'ep',
  request: 'req',
} as const;

export type IdPrefix = (typeof ID_PREFIX)[keyof typeof ID_PREFIX];

/**
 * A prefixed id: `key_01J…`. The ULID part is time-sortable (48-bit ms) and
 * unguessable (80 random bits from the CSPRNG), lower-cased for readability.
 */
export function newId(prefix: IdPrefix): string {
  return `${prefix}_${ulid(undefined, pooledRandom).toLowerCase()}`;
}

// ulid's default PRNG asks the CSPRNG once per character (16 calls per id); drawing
// from a pooled buffer costs one call per 4096 characters. A byte / 256 maps to an
// unbiased character: ulid takes floor(x * 32), i.e. the byte's top five bits.
const pool = Buffer.alloc(4096);
let poolOffset = pool.length;

function pooledRandom(): number {
  if (poolOffset === pool.length) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  return pool[poolOffset++]! / 256;
}

export function hasPrefix(id: string, prefix: IdPrefix): boolean {
  return id.startsWith(`${prefix}_`) && /^[a-z]+_[0-9a-hjkmnp-tv-z]{26}$/.test(id);
}
