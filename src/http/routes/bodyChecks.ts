import type { Config } from '../../config/schema.ts';
import { Problem } from '../../core/problems.ts';
import { METADATA_MAX_BYTES } from '../schemas/common.ts';

/** Checks a body's schema cannot express, shared by the routes that take these fields. */
export function checkMetadata(metadata: Record<string, unknown> | undefined): void {
  if (metadata && Buffer.byteLength(JSON.stringify(metadata)) > METADATA_MAX_BYTES) {
    throw new Problem('validation-failed', { detail: `body.metadata is larger than ${METADATA_MAX_BYTES} bytes` });
  }
}

/** A rate-limit policy a body names must be configured. */
export function checkRateLimitPolicy(config: Config, name: string | null | undefined): void {
  if (typeof name === 'string' && !Object.hasOwn(config.rateLimits.policies, name)) {
    throw new Problem('validation-failed', { detail: `body.rateLimitPolicy: no rate-limit policy named ${name} is configured` });
  }
}
