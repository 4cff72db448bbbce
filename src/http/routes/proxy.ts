import type { IncomingHttpHeaders } from 'node:http';
import { Transform } from 'node:stream';
import type { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Dispatcher } from 'undici';
import type { ProxyRouteConfig } from '../../config/schema.ts';
import { Problem } from '../../core/problems.ts';
import { createOutboundClient } from '../../outbound/client.ts';
import type { OutboundClient } from '../../outbound/client.ts';
import { caller } from '../plugins/auth.ts';
import type { Services } from '../services.ts';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The proxy route this Fastify route serves. */
    proxy?: ProxyRouteConfig;
  }
}

const READ_METHODS = ['GET', 'HEAD', 'OPTIONS'] as const;
const WRITE_METHODS = ['POST', 'PUT', 'PATCH', 'DELETE'] as const;

// RFC 9110 §7.6.1: hop-by-hop headers are for one connection only, never forwarded.
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade']);
// Set by Portcullis alone: a client's copies are dropped, not forwarded.
const OWN_HEADERS = /^(x-portcullis-|x-forwarded-|forwarded$|x-real-ip$)/;

/** Headers minus hop-by-hop ones, including those the Connection header names. */
function endToEnd(headers: IncomingHttpHeaders, drop: (name: string) => boolean): Record<string, string | string[]> {
  const named = new Set(
    String(headers.connection ?? '')
      .split(',')
      .map((h) => h.trim().toLowerCase())
      .filter(Boolean),
  );
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || HOP_BY_HOP.has(name) || named.has(name) || drop(name)) continue;
    out[name] = value;
  }
  return out;
}

/** Counts a streamed body and fails it past the limit (Fastify's limit applies only to bodies it parses). */
function limited(body: Readable, limit: number): Readable {
  let seen = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _enc, done) {
      seen += chunk.length;
      if (seen > limit) done(new Problem('payload-too-large', { detail: 'request body is larger than the limit' }));
      else done(null, chunk);
    },
  });
  body.on('error', (err) => counter.destroy(err));
  return body.pipe(counter);
}

function upstreamProblem(err: unknown): Problem {
  if (err instanceof Problem) return err;
  const code = (err as { code?: string }).code ?? '';
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') {
    return new Problem('upstream-timeout', { detail: 'the upstream did not answer in time' });
  }
  return new Problem('upstream-unavailable', { detail: 'the upstream could not be reached or closed the connection' });
}

/**
 * Proxy mode: each configured route forwards `<prefix>*` to its upstream with
 * Portcullis in front — API keys and scopes, rate limits, quotas and metering
 * (by the same plugins as every route) — streaming both bodies, never buffering.
 * The caller's key is not forwarded; its identity is, as X-Portcullis-Key-Id and
 * X-Portcullis-Scopes, and an upstream credential may be injected from a secret.
 */
export async function registerProxyRoutes(app: FastifyInstance, services: Services): Promise<void> {
  const routes = services.config.proxy.routes;
  if (routes.length === 0) return;
  const clients: OutboundClient[] = [];
  app.addHook('onClose', async () => {
    await Promise.all(clients.map((c) => c.close()));
  });

  // An encapsulated context: its any-type, pass-through body parser applies to proxy routes only.
  await app.register(async (proxy) => {
    proxy.removeAllContentTypeParsers();
    proxy.addContentTypeParser('*', (_request, payload, done) => done(null, payload));

    for (const route of routes) {
      const client = createOutboundClient({ allow: [], guard: false, connectTimeoutMs: route.connectTimeoutMs, responseTimeoutMs: route.responseTimeoutMs, bodyTimeoutMs: route.responseTimeoutMs });
      clients.push(client);
      const upstream = new URL(route.upstream);
      const basePath = upstream.pathname.replace(/\/$/, '');
      // The loader filled `value` from the environment (or file) it names.
      const credential = route.credential?.value ? { header: route.credential.header.toLowerCase(), value: route.credential.value } : null;

      const handler = async (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
        const me = caller(request);
        const declared = Number(request.headers['content-length']);
        if (declared > route.bodyLimit) throw new Problem('payload-too-large', { detail: 'request body is larger than the limit' });

        const rest = route.stripPrefix ? request.url.slice(route.prefix.length - 1) : request.url;
        const headers = endToEnd(request.headers, (name) => name === 'host' || name === 'authorization' || OWN_HEADERS.test(name) || name === credential?.header);
        const peer = request.socket.remoteAddress ?? '';
        const forwardedFor = request.headers['x-forwarded-for'];
        // Extend a chain only when it came from a trusted proxy; otherwise the client could write it.
        headers['x-forwarded-for'] = services.config.trustProxy.length > 0 && forwardedFor ? `${String(forwardedFor)}, ${peer}` : peer;
        headers['x-forwarded-proto'] = request.protocol;
        headers['x-forwarded-host'] = request.host;
        headers['x-portcullis-key-id'] = me.keyId;
        headers['x-portcullis-scopes'] = me.scopes.join(',');
        headers['x-request-id'] = request.id;
        if (credential) headers[credential.header] = credential.value;

        const hasBody = request.body !== undefined && request.body !== null && !READ_METHODS.includes(request.method as (typeof READ_METHODS)[number]);
        const aborted = new AbortController();
        request.raw.once('close', () => {
          if (!reply.sent && !request.raw.complete) aborted.abort();
        });
        let res: Dispatcher.ResponseData;
        try {
          res = await client.dispatcher.request({
            origin: upstream.origin,
            path: `${basePath}${rest}`,
            method: request.method as Dispatcher.HttpMethod,
            headers,
            body: hasBody ? limited(request.body as Readable, route.bodyLimit) : null,
            signal: aborted.signal,
          });
        } catch (err) {
          const problem = upstreamProblem(err);
          if (problem.code !== 'payload-too-large') {
            services.metrics.proxyErrors.inc({ route: route.prefix, kind: problem.code });
            request.log.warn({ upstream: upstream.origin, err: (err as Error).message }, 'proxy: upstream request failed');
          }
          throw problem;
        }
        services.metrics.proxyUpstreamDuration.observe({ route: route.prefix, status: String(res.statusCode) }, reply.elapsedTime / 1000);
        reply.code(res.statusCode);
        for (const [name, value] of Object.entries(endToEnd(res.headers, (n) => n === 'content-length' && res.headers['transfer-encoding'] !== undefined))) {
          reply.header(name, value);
        }
        // A body error after the headers went out can only cut the connection; Fastify does that.
        return reply.send(res.body);
      };

      const url = `${route.prefix}*`;
      proxy.route({ method: [...READ_METHODS], url, config: { scope: route.scope, proxy: route }, handler });
      proxy.route({ method: [...WRITE_METHODS], url, config: { scope: route.writeScope ?? route.scope, proxy: route }, handler });
    }
  });
}
