import assert from 'node:assert/strict';
import { test } from 'node:test';
import { deriveKeys, generateRootSecret } from '../../src/core/rootSecret.ts';
import { openSecret, sealSecret } from '../../src/core/secretBox.ts';

test('a sealed secret opens only with its key, for its record, unaltered', () => {
  const { secretsEncryptionKey: key } = deriveKeys(generateRootSecret());
  const sealed = sealSecret(key, 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'src_01');
  assert.ok(!sealed.includes('MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'));
  assert.notEqual(sealSecret(key, 'same', 'src_01'), sealSecret(key, 'same', 'src_01'), 'a fresh IV each time');
  assert.equal(openSecret(key, sealed, 'src_01'), 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw');

  assert.throws(() => openSecret(key, sealed, 'src_02'), 'bound to its record');
  assert.throws(() => openSecret(deriveKeys(generateRootSecret()).secretsEncryptionKey, sealed, 'src_01'), 'another root secret');
  const [v, iv, data, tag] = sealed.split('.');
  const flipped = Buffer.from(data!, 'base64url');
  flipped[0]! ^= 1;
  assert.throws(() => openSecret(key, [v, iv, flipped.toString('base64url'), tag].join('.'), 'src_01'), 'altered ciphertext');
  assert.throws(() => openSecret(key, 'v0.x.y.z', 'src_01'));
  // The API-key pepper and the encryption key are different keys.
  const keys = deriveKeys(generateRootSecret());
  assert.notDeepEqual(keys.apiKeyPepper.export(), keys.secretsEncryptionKey.export());
});
