import { ageSeconds, contentHash, field, fromHex, hmac, parseJson, sameBytes } from './crypto.ts';
import type { Verifier } from './types.ts';
import { reject } from './types.ts';

export const SLACK_TOLERANCE_S = 300;

/**
 * Slack: `X-Slack-Signature: v0=<hex HMAC-SHA256 of "v0:<timestamp>:<body>">`,
 * timestamp within 300 s. A `url_verification` request is answered with its
 * challenge, so the URL can be registered. Type: `event.type` of an
 * `event_callback`, else the payload's `type`; dedup on `event_id`.
 */
export const verifySlack: Verifier = (request, { secrets, now }) => {
  const header = request.headers['x-slack-signature'];
  const timestamp = request.headers['x-slack-request-timestamp'];
  if (!header || !timestamp) return reject('missing-signature', 'X-Slack-Signature or X-Slack-Request-Timestamp is missing');
  const age = ageSeconds(timestamp, now);
  if (age === null) return reject('missing-signature', 'X-Slack-Request-Timestamp is not a number of seconds');
  const received = header.startsWith('v0=') ? fromHex(header.slice(3)) : null;
  if (!received || !secrets.some((secret) => sameBytes(hmac('sha256', secret, `v0:${timestamp}:`, request.body), received))) {
    return reject('bad-signature', 'X-Slack-Signature does not match');
  }
  if (age > SLACK_TOLERANCE_S) return reject('stale-timestamp', `the timestamp is ${Math.round(age)} s away (tolerance ${SLACK_TOLERANCE_S} s)`);
  // Slash commands and interactivity arrive form-encoded (interactivity as a JSON `payload` field).
  if (request.headers['content-type']?.startsWith('application/x-www-form-urlencoded')) {
    const form = new URLSearchParams(request.body.toString('utf8'));
    const interaction = form.has('payload') ? field(parseJson(Buffer.from(form.get('payload')!)), 'type') : undefined;
    const type = typeof interaction === 'string' ? `interaction.${interaction}` : form.has('command') ? 'command' : 'form';
    const triggerId = form.get('trigger_id');
    return { ok: true, type, deliveryId: triggerId, dedupKey: triggerId ?? contentHash(request.body) };
  }
  const payload = parseJson(request.body);
  if (payload === null) return reject('malformed-body', 'the body is not JSON');
  const kind = field(payload, 'type');
  if (kind === 'url_verification') {
    const challenge = field(payload, 'challenge');
    if (typeof challenge !== 'string') return reject('malformed-body', 'url_verification without a challenge');
    return { ok: true, type: 'url_verification', deliveryId: null, dedupKey: contentHash(request.body), reply: { contentType: 'text/plain', body: challenge } };
  }
  const eventType = field(payload, 'event', 'type');
  const eventId = field(payload, 'event_id');
  const type = kind === 'event_callback' && typeof eventType === 'string' ? `event.${eventType}` : typeof kind === 'string' ? kind : 'unknown';
  return { ok: true, type, deliveryId: typeof eventId === 'string' ? eventId : null, dedupKey: typeof eventId === 'string' ? eventId : contentHash(request.body) };
};
