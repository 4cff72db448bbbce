import { createSecretKey, hkdfSync, randomBytes, type KeyObject } from 'node:crypto';

/** Minimum length of the root secret, in characters. */
export const ROOT_SECRET_MIN_LENGTH = 32;

export function generateRootSecret(): string {
  return randomBytes(32).toString('base64url');
}

// A KeyObject, made once: handing HMAC a Buffer makes OpenSSL build a new key on every call.
function derive(root: string, info: string): KeyObject {
  return createSecretKey(Buffer.from(hkdfSync('sha256', root, 'portcullis', info, 32)));
}

/** Subkeys derived from the root secret, each for one purpose only. */
export interface DerivedKeys {
  apiKeyPepper: KeyObject;
  secretsEncryptionKey: KeyObject;
}

export function deriveKeys(root: string): DerivedKeys {
  return {
    apiKeyPepper: derive(root, 'api-key-pepper/v1'),
    secretsEncryptionKey: derive(root, 'secrets-encryption/v1'),
  };
}
