import type { KeyObject } from 'node:crypto';
import type { OutboundClient } from '../outbound/client.ts';
import { webhookSignature } from '../core/webhookSigning.ts';

/**
 * Headers of an inbound event that are not forwarded: hop-by-hop and framing
 * ones, the provider's signatures (they sign for us, not for the receiver, and
 * ours replace them), credentials a sender added, the path it took to us, and
 * anything of ours. Besides these, any name holding `signature` or `hmac`. (A
 * generic source's own signature header is not even stored with the event.)
 */
const NOT_FORWARDED = new Set([
  'host',
  'connection',
  'keep-alive',
  'transfer-encoding',
  'content-length',
  'content-encoding',
  'accept-encoding',
  'expect',
  'user-agent',
  'x-hub-signature',
  'x-hub-signature-256',
  'stripe-signature',
  'x-shopify-hmac-sha256',
  'x-slack-signature',
  'x-slack-request-timestamp',
  'x-webhook-secret',
  'authorization',
  'proxy-authorization',
  'cookie',
  'x-api-key',
  'api-key',
  'webhook-id',
  'webhook-timestamp',
  'webhook-signature',
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-host',
  'x-forwarded-port',
  'x-real-ip',
  'forwarded',
  'via',
  'te',
  'trailer',
  'upgrade',
]);
/** Names of signatures whatever the provider (`Svix-Signature`, `X-Acme-Hmac`); a broader rule would drop `X-Event-Key` (Bitbucket's event type). */
const SIGNATURE_LIKE = /signature|hmac/;

export const USER_AGENT = 'Portcullis-Webhooks/1';

export interface AttemptRequest {
  url: string;
  /** The signing keys of the endpoint's current secret, and during a rotation the previous one: each attempt carries both signatures. */
  keys: KeyObject[];
  /** `webhook-id`: the message or event id, the same on every attempt. */
  webhookId: string;
  eventType: string;
  sourceId: string | null;
  body: Buffer;
  contentType: string;
  /** The provider's headers of a forwarded inbound event (filtered here), and the endpoint's own. */
  eventHeaders: Record<string, string>;
  endpointHeaders: Record<string, string>;
  timeoutMs: number;
  responseBodyMaxBytes: number;
  now: Date;
}

export interface AttemptResponse {
  /** 2xx: nothing else counts as delivered (a 3xx is never followed). */
  ok: boolean;
  statusCode: number | null;
  latencyMs: number;
  responseBody: string | null;
  error: string | null;
  retryAfter: string | null;
}

/** The event's headers a receiver gets. */
export function forwardedHeaders(eventHeaders: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(eventHeaders).filter(([name]) => !NOT_FORWARDED.has(name) && !name.startsWith('portcullis-') && !SIGNATURE_LIKE.test(name)));
}

/** Reads at most `max` bytes of a response body and drops the rest unread. */
async function readSome(body: AsyncIterable<Buffer> & { destroy(): void }, max: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    chunks.push(chunk);
    size += chunk.length;
    if (size >= max) break;
  }
  body.destroy();
  // Kept as text: U+0000, which PostgreSQL text cannot hold, becomes U+FFFD as invalid UTF-8 does.
  return Buffer.concat(chunks).subarray(0, max).toString('utf8').replaceAll('\u0000', '\uFFFD');
}

/** One signed POST to an endpoint, through the SSRF-guarded client; never throws. */
export async function sendAttempt(client: OutboundClient, req: AttemptRequest): Promise<AttemptResponse> {
  const timestamp = Math.floor(req.now.getTime() / 1000);
  const headers: Record<string, string> = {
    ...forwardedHeaders(req.eventHeaders),
    ...req.endpointHeaders,
    'content-type': req.contentType,
    'user-agent': USER_AGENT,
    'webhook-id': req.webhookId,
    'webhook-timestamp': String(timestamp),
    'webhook-signature': webhookSignature(req.keys, req.webhookId, timestamp, req.body),
    'portcullis-event-type': req.eventType,
    ...(req.sourceId ? { 'portcullis-source': req.sourceId } : {}),
  };
  const started = performance.now();
  const signal = AbortSignal.timeout(req.timeoutMs);
  try {
    const res = await client.request(req.url, { method: 'POST', headers, body: req.body, signal, maxRedirects: 0 });
    const responseBody = await readSome(res.body, req.responseBodyMaxBytes).catch(() => null);
    const ok = res.statusCode >= 200 && res.statusCode < 300;
    const location = res.headers.location;
    const error = ok ? null : res.statusCode >= 300 && res.statusCode < 400 ? `HTTP ${res.statusCode} (redirects are not followed${typeof location === 'string' ? `: ${location.slice(0, 200)}` : ''})` : `HTTP ${res.statusCode}`;
    const retryAfter = res.headers['retry-after'];
    return {
      ok,
      statusCode: res.statusCode,
      latencyMs: Math.round(performance.now() - started),
      responseBody,
      error,
      retryAfter: typeof retryAfter === 'string' ? retryAfter : null,
    };
  } catch (err) {
    const e = err as Error & { code?: string };
    const error = signal.aborted ? `timed out after ${req.timeoutMs} ms` : [e.code, e.message].filter(Boolean).join(': ') || String(err);
    return { ok: false, statusCode: null, latencyMs: Math.round(performance.now() - started), responseBody: null, error, retryAfter: null };
  }
}
