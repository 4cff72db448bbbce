import type { KeyObject } from 'node:crypto';
import { apiKeyDisplayPrefix, generateApiKey, hashApiKey } from '../core/apiKeys.ts';

export interface IssuedSecret {
  /** The key itself: shown once, never stored. */
  secret: string;
  hash: string;
  prefix: string;
}

export function issueSecret(pepper: KeyObject): IssuedSecret {
  const secret = generateApiKey();
  return { secret, hash: hashApiKey(secret, pepper), prefix: apiKeyDisplayPrefix(secret) };
}
