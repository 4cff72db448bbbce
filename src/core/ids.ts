import { ulid } from 'ulid';

/** Resource id prefixes: one home for every prefix the API hands out. */
export const ID_PREFIX = {
  key: 'key',
  request: 'req',
} as const;

export type IdPrefix = (typeof ID_PREFIX)[keyof typeof ID_PREFIX];

/**
 * A prefixed id: `key_01J…`. The ULID part is time-sortable (48-bit ms) and
 * unguessable (80 random bits from the CSPRNG), lower-cased for readability.
 */
export function newId(prefix: IdPrefix): string {
  return `${prefix}_${ulid().toLowerCase()}`;
}

export function hasPrefix(id: string, prefix: IdPrefix): boolean {
  return id.startsWith(`${prefix}_`) && /^[a-z]+_[0-9a-hjkmnp-tv-z]{26}$/.test(id);
}
