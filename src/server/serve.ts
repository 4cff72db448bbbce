import { readFileSync } from 'node:fs';
import Fastify from 'fastify';
import type { FastifyInstance } from 'fastify';
import type { Config } from '../config/schema.ts';
import { buildApp } from '../http/app.ts';
import type { Services } from '../http/services.ts';
import { IDEMPOTENCY_TTL_MS } from '../http/plugins/idempotency.ts';
import { bootstrap } from './bootstrap.ts';
import { startBackground } from './background.ts';
import { createServices } from './services.ts';
import type { ServiceOptions } from './services.ts';

/** How often expired idempotency records are deleted. */
export const IDEMPOTENCY_SWEEP_INTERVAL_MS = 60 * 60 * 1000;
/** During shutdown, how often connections that finished their last response are closed. */
export const SHUTDOWN_REAP_INTERVAL_MS = 50;

export interface RunningServer {
  app: FastifyInstance;
  services: Services;
  /** Where the API listens, e.g. `http://127.0.0.1:8080`. */
  url: string;
  metricsUrl: string | null;
  /** The plain-HTTP listener redirecting to HTTPS, when configured. */
  redirectUrl: string | null;
  /** Stops accepting, lets in-flight requests finish (up to shutdownTimeoutMs), closes the store. */
  close(): Promise<void>;
}

function metricsListener(services: Services): FastifyInstance {
  const app = Fastify({ logger: false });
  app.get('/metrics', async (_request, reply) => reply.type(services.metrics.registry.contentType).send(await services.metrics.registry.metrics()));
  return app;
}

/** Plain HTTP that sends every request to the same path over HTTPS. */
function redirectListener(httpsPort: number): FastifyInstance {
  const app = Fastify({ logger: false });
  app.all('/*', (request, reply) => {
    // The Host header names the site the client wanted; keep it, swap scheme and port.
    const host = request.hostname.includes(':') ? `[${request.hostname}]` : request.hostname;
    const port = httpsPort === 443 ? '' : `:${httpsPort}`;
    reply.header('cache-control', 'no-store').redirect(`https://${host}${port}${request.url}`, 308);
  });
  return app;
}

/** Listens on `host:port` (port 0: any free one); returns `http://host:port`. */
async function listenOn(app: FastifyInstance, hostPort: string): Promise<string> {
  const i = hostPort.lastIndexOf(':');
  const host = hostPort.slice(0, i).replace(/^\[|\]$/g, '');
  await app.listen({ host, port: Number(hostPort.slice(i + 1)) });
  const address = app.server.address();
  return `http://${host.includes(':') ? `[${host}]` : host}:${typeof address === 'object' && address ? address.port : hostPort.slice(i + 1)}`;
}

/** Initialises the store if needed, then listens. Used by `portcullis serve` and tests. */
export async function startServer(config: Config, options: ServiceOptions): Promise<RunningServer> {
  const services = await createServices(config, options);
  const log = services.logger;
  try {
    const boot = await bootstrap(services);
    if (boot.created) log.info({ path: boot.path, keyId: boot.keyId }, 'store initialised; the first admin key was written to this file');
  } catch (err) {
    await services.close();
    throw err;
  }

  const tls = config.tlsCert && config.tlsKey ? { cert: readFileSync(config.tlsCert), key: readFileSync(config.tlsKey) } : null;
  const { role } = config;
  const server = await buildApp(services, { ...(tls ? { https: tls } : {}), systemOnly: role === 'worker' });
  await server.listen({ host: config.host, port: config.port });
  const address = server.server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  const url = `${tls ? 'https' : 'http'}://${host}:${port}`;

  let metrics: FastifyInstance | null = null;
  let metricsUrl: string | null = null;
  if (config.metricsListen) {
    metrics = metricsListener(services);
    metricsUrl = `${await listenOn(metrics, config.metricsListen)}/metrics`;
  }

  let redirect: FastifyInstance | null = null;
  let redirectUrl: string | null = null;
  if (tls && config.httpRedirectListen) {
    redirect = redirectListener(port);
    redirectUrl = await listenOn(redirect, config.httpRedirectListen);
  }

  // Jobs, deliveries and retention: in `all` and `worker` processes.
  const background = role === 'api' ? null : startBackground(services, log);

  const sweep = setInterval(() => {
    services.store.idempotency
      .deleteExpired(new Date(services.clock().getTime() - IDEMPOTENCY_TTL_MS))
      .catch((err: Error) => log.warn({ err: err.message }, 'idempotency sweep failed'));
  }, IDEMPOTENCY_SWEEP_INTERVAL_MS);
  sweep.unref();

  log.info({ url, role, engine: services.store.engine, metricsUrl, redirectUrl }, 'listening');

  let closing: Promise<void> | null = null;
  return {
    app: server,
    services,
    url,
    metricsUrl,
    redirectUrl,
    close() {
      closing ??= (async () => {
        clearInterval(sweep);
        // Node closes the connections idle when close() starts; those busy then
        // would linger in keep-alive after their response, so close them as they go idle.
        const reap = setInterval(() => server.server.closeIdleConnections(), SHUTDOWN_REAP_INTERVAL_MS);
        const timeout = new Promise<void>((resolve) => setTimeout(resolve, config.shutdownTimeoutMs).unref());
        await Promise.race([Promise.all([server.close(), metrics?.close(), redirect?.close()]), timeout]);
        clearInterval(reap);
        await background?.stop();
        await services.close();
      })();
      return closing;
    },
  };
}
