import { Agent } from 'undici';
import type { Dispatcher } from 'undici';
import type { Resolver } from './ssrf.ts';
import { createSsrfGuard } from './ssrf.ts';

/** Timeouts by default: connect 5 s, response headers 60 s (as proxy mode promises). */
export const OUTBOUND_CONNECT_TIMEOUT_MS = 5000;
export const OUTBOUND_RESPONSE_TIMEOUT_MS = 60_000;

export interface OutboundOptions {
  /** CIDRs or addresses allowed despite the SSRF guard (`ssrfAllow`). */
  allow: readonly string[];
  resolver?: Resolver;
  connectTimeoutMs?: number;
  /** Until the response headers arrive. */
  responseTimeoutMs?: number;
  /** Between two chunks of the response body. */
  bodyTimeoutMs?: number;
  /** Keep-alive connections per origin. */
  connections?: number;
  /**
   * False turns the SSRF guard off: only for destinations the operator configured
   * (proxy upstreams), never for ones an API caller gives.
   */
  guard?: boolean;
}

export interface OutboundRequest {
  method?: Dispatcher.HttpMethod;
  headers?: Record<string, string | string[]>;
  body?: Dispatcher.DispatchOptions['body'];
  /** Redirects to follow, each re-checked by the guard. Default 0: a 3xx is returned as is. */
  maxRedirects?: number;
  signal?: AbortSignal;
}

export interface OutboundClient {
  request(url: string | URL, options?: OutboundRequest): Promise<Dispatcher.ResponseData>;
  /** The pool, for callers that stream (proxy mode). Every connection it opens is guarded. */
  readonly dispatcher: Dispatcher;
  /** Refuses a URL whose host (literal, or every resolved address) is not allowed. */
  check(url: string | URL): Promise<void>;
  close(): Promise<void>;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const CREDENTIAL_HEADERS = new Set(['authorization', 'cookie', 'proxy-authorization']);

/**
 * The one way Portcullis makes HTTP requests (proxy mode now, deliveries and
 * pollers later): undici keep-alive pools, connect and response timeouts, and
 * the SSRF guard on every connection. Only http and https.
 */
export function createOutboundClient(options: OutboundOptions): OutboundClient {
  const guard = createSsrfGuard(options.allow, options.resolver);
  const guarded = options.guard ?? true;
  const agent = new Agent({
    connect: { ...(guarded ? { lookup: guard.lookup } : {}), timeout: options.connectTimeoutMs ?? OUTBOUND_CONNECT_TIMEOUT_MS },
    headersTimeout: options.responseTimeoutMs ?? OUTBOUND_RESPONSE_TIMEOUT_MS,
    bodyTimeout: options.bodyTimeoutMs ?? OUTBOUND_RESPONSE_TIMEOUT_MS,
    connections: options.connections ?? 128,
  });

  async function check(url: string | URL): Promise<void> {
    const u = new URL(url);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new TypeError(`only http and https URLs are allowed, not ${u.protocol}`);
    // Literal addresses never reach the lookup, so they are checked here; names are checked at connect too.
    if (guarded) await guard.check(u.hostname);
  }

  return {
    dispatcher: agent,
    check,
    async request(url, req = {}) {
      let target = new URL(url);
      let method = req.method ?? 'GET';
      let body = req.body;
      let headers = req.headers ?? {};
      for (let hop = 0; ; hop++) {
        await untilAborted(check(target), req.signal);
        const res = await agent.request({
          origin: target.origin,
          path: `${target.pathname}${target.search}`,
          method,
          headers,
          body,
          ...(req.signal ? { signal: req.signal } : {}),
        });
        const location = res.headers.location;
        if (!REDIRECTS.has(res.statusCode) || typeof location !== 'string' || hop >= (req.maxRedirects ?? 0)) return res;
        await res.body.dump();
        const next = new URL(location, target);
        // Credentials meant for one origin are not handed to another.
        if (next.origin !== target.origin) headers = Object.fromEntries(Object.entries(headers).filter(([name]) => !CREDENTIAL_HEADERS.has(name.toLowerCase())));
        target = next;
        // As browsers do: 303 (and 301/302 after a POST) continue as a GET without a body.
        if (res.statusCode === 303 || ((res.statusCode === 301 || res.statusCode === 302) && method === 'POST')) {
          method = 'GET';
          body = undefined;
        }
      }
    },
    close: () => agent.close(),
  };
}

/** `work`, or the signal's reason once it aborts (a name lookup that hangs is bounded by the request's timeout too). */
function untilAborted<T>(work: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return work;
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
