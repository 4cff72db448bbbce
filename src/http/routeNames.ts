/**
 * Routes named in the configuration (`"POST /v1/keys"`, `"GET /v1/keys/{id}"`):
 * written as the docs show them or as Fastify does (`/v1/keys/:id`), and
 * checked against the routes that exist once the app is ready.
 */
export interface ConfiguredRoutes<T> {
  /** The value configured for this method and Fastify route, marking the route as existing. */
  lookup(method: string, url: string): T | undefined;
  /** Configured routes no registered route matched. */
  unknown(): string[];
}

export function configuredRoutes<T>(entries: Record<string, T>): ConfiguredRoutes<T> {
  const values = new Map(Object.entries(entries).map(([route, value]) => [route.replace(/\{([^}]+)\}/g, ':$1'), value]));
  const seen = new Set<string>();
  return {
    lookup(method, url) {
      const id = `${method} ${url}`;
      const value = values.get(id);
      if (value !== undefined) seen.add(id);
      return value;
    },
    unknown: () => [...values.keys()].filter((id) => !seen.has(id)),
  };
}

/** `/v1/keys/:id` → `/v1/keys/{id}`, as the docs and usage reports write routes. */
export function docsRoute(method: string, url: string): string {
  return `${method} ${url.replace(/:([A-Za-z0-9_]+)/g, '{$1}')}`;
}
