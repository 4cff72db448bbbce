/** Event-type filters: exact types, or `prefix.*` for every type starting with `prefix.`; none matches everything. */
export function typeMatches(patterns: readonly string[], type: string): boolean {
  return patterns.length === 0 || patterns.some((p) => (p.endsWith('.*') ? type.startsWith(p.slice(0, -1)) : p === type));
}
