import { contentHash, fromBase64, hmac, sameBytes } from './crypto.ts';
import type { Verifier } from './types.ts';
import { reject } from './types.ts';

/**
 * Shopify: `X-Shopify-Hmac-SHA256` = base64 HMAC-SHA256 of the raw body. Type
 * from `X-Shopify-Topic` (`orders/create` → `orders.create`); dedup on
 * `X-Shopify-Webhook-Id`.
 */
export const verifyShopify: Verifier = (request, { secrets }) => {
  const header = request.headers['x-shopify-hmac-sha256'];
  if (!header) return reject('missing-signature', 'X-Shopify-Hmac-SHA256 is missing');
  const received = fromBase64(header);
  if (!received || !secrets.some((secret) => sameBytes(hmac('sha256', secret, request.body), received))) {
    return reject('bad-signature', 'X-Shopify-Hmac-SHA256 does not match the body');
  }
  const topic = request.headers['x-shopify-topic'] ?? 'unknown';
  const deliveryId = request.headers['x-shopify-webhook-id'] ?? null;
  return { ok: true, type: topic.replaceAll('/', '.'), deliveryId, dedupKey: deliveryId ?? contentHash(request.body) };
};
