import { ageSeconds, field, fromHex, hmac, parseJson, sameBytes } from './crypto.ts';
import type { Verifier } from './types.ts';
import { reject } from './types.ts';

export const STRIPE_TOLERANCE_S = 300;

/**
 * Stripe: `Stripe-Signature: t=<unix>,v1=<hex>[,v1=…]` over `<t>.<raw body>`;
 * any v1 may match; the timestamp must be within 300 s. Dedup on the event id.
 */
export const verifyStripe: Verifier = (request, { secrets, now }) => {
  const header = request.headers['stripe-signature'];
  if (!header) return reject('missing-signature', 'Stripe-Signature is missing');
  let timestamp: string | undefined;
  const signatures: Buffer[] = [];
  for (const item of header.split(',')) {
    const [key, value] = item.split('=', 2).map((s) => s.trim());
    if (key === 't') timestamp = value;
    else if (key === 'v1' && value) {
      const sig = fromHex(value);
      if (sig) signatures.push(sig);
    }
  }
  const age = ageSeconds(timestamp, now);
  if (age === null || signatures.length === 0) return reject('missing-signature', 'Stripe-Signature has no timestamp or no v1 signature');
  const matches = secrets.some((secret) => {
    const expected = hmac('sha256', secret, `${timestamp}.`, request.body);
    return signatures.some((sig) => sameBytes(expected, sig));
  });
  if (!matches) return reject('bad-signature', 'no v1 signature matches');
  if (age > STRIPE_TOLERANCE_S) return reject('stale-timestamp', `the signature is ${Math.round(age)} s old (tolerance ${STRIPE_TOLERANCE_S} s)`);
  const payload = parseJson(request.body);
  const id = field(payload, 'id');
  const type = field(payload, 'type');
  if (typeof id !== 'string' || typeof type !== 'string') return reject('malformed-body', 'the body is not a Stripe event (id, type)');
  return { ok: true, type, deliveryId: id, dedupKey: id };
};
