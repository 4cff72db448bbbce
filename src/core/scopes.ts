/**
 * Scopes are `<resource>:read`, `<resource>:write` and `admin`.
 * `admin` holds every scope; `<resource>:write` also holds `<resource>:read`.
 */
export const RESOURCES = [
  'keys',
  'sources',
  'events',
  'consumer-groups',
  'endpoints',
  'messages',
  'deliveries',
  'pollers',
  'transformations',
  'usage',
  'alerts',
  'embed-tokens',
  'stats',
  'metrics',
] as const;

export type Resource = (typeof RESOURCES)[number];
export const ADMIN_SCOPE = 'admin';

export const ALL_SCOPES: readonly string[] = [
  ADMIN_SCOPE,
  ...RESOURCES.flatMap((r) => [`${r}:read`, `${r}:write`]),
];

/** What any scope looks like: `admin`, or `<resource>:read|write`. */
export const SCOPE_PATTERN = '^(admin|[a-z][a-z0-9-]{0,39}:(read|write))$';
export const SCOPES_PER_KEY_MAX = 100;

/**
 * The scopes a server knows: the built-in ones, plus `<resource>:read|write`
 * for each resource its proxy routes declare (an upstream API's own scopes).
 */
export interface ScopeCatalog {
  isKnown(scope: string): boolean;
  /** Every known scope, sorted. */
  list(): string[];
}

export function scopeCatalog(extraResources: readonly string[] = []): ScopeCatalog {
  const known = new Set([...ALL_SCOPES, ...extraResources.flatMap((r) => [`${r}:read`, `${r}:write`])]);
  return { isKnown: (scope) => known.has(scope), list: () => [...known].sort() };
}

const BUILT_IN = scopeCatalog();

export function isKnownScope(scope: string): boolean {
  return BUILT_IN.isKnown(scope);
}

export function holdsScope(granted: readonly string[], needed: string): boolean {
  if (granted.includes(ADMIN_SCOPE) || granted.includes(needed)) return true;
  if (needed.endsWith(':read')) return granted.includes(needed.slice(0, -':read'.length) + ':write');
  return false;
}

/** Scopes in `wanted` that `granted` does not cover, in order. */
export function missingScopes(granted: readonly string[], wanted: readonly string[]): string[] {
  return wanted.filter((s) => !holdsScope(granted, s));
}

/** Sorted, without duplicates: the form scopes are stored in. */
export function normalizeScopes(scopes: readonly string[]): string[] {
  return [...new Set(scopes)].sort();
}
