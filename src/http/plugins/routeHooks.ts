import type { FastifyRequest } from 'fastify';

/** A route option's hooks as an array, whether it was given none, one or several. */
export function hookArray<T>(hooks: T | T[] | undefined): T[] {
  return hooks === undefined ? [] : Array.isArray(hooks) ? hooks : [hooks];
}

/**
 * preValidation for routes whose body is optional (marked `x-optional-body`):
 * no body means the defaults. A JSON `null` is a body, and invalid.
 */
export async function emptyBodyAsDefaults(request: FastifyRequest): Promise<void> {
  if (request.body === undefined) request.body = {};
}
