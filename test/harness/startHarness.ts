import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { TestContext } from 'node:test';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { loadConfig } from '../../src/config/load.ts';
import type { Config } from '../../src/config/schema.ts';
import { generateRootSecret } from '../../src/core/rootSecret.ts';
import { buildApp } from '../../src/http/app.ts';
import type { Services } from '../../src/http/services.ts';
import { bootstrap } from '../../src/server/bootstrap.ts';
import { createLogger } from '../../src/server/logger.ts';
import { createServices } from '../../src/server/services.ts';
import type { ProcessStep } from '../../src/queue/worker.ts';
import { startBackground } from '../../src/server/background.ts';
import type { Background } from '../../src/server/background.ts';
import type { Resolver } from '../../src/outbound/ssrf.ts';
import { testClock } from './clock.ts';
import type { TestClock } from './clock.ts';
import { onCleanup } from './cleanup.ts';
import { TEST_ENGINE, testStoreConfig } from './engine.ts';

export interface RequestOptions {
  /** API key to send; defaults to the admin key. `null` sends none. */
  key?: string | null;
  body?: unknown;
  /** Raw payload, sent as is (for malformed-body tests). */
  payload?: string | Buffer;
  headers?: Record<string, string>;
}

export interface CreatedKey {
  id: string;
  secret: string;
}

export interface Harness {
  app: FastifyInstance;
  services: Services;
  config: Config;
  engine: 'sqlite' | 'postgres';
  adminKey: string;
  clock: TestClock;
  dataDir: string;
  rootSecret: string;
  /** Every log line the app wrote, as text. */
  logText(): string;
  request(method: string, url: string, options?: RequestOptions): Promise<LightMyRequestResponse>;
  get(url: string, options?: RequestOptions): Promise<LightMyRequestResponse>;
  post(url: string, options?: RequestOptions): Promise<LightMyRequestResponse>;
  patch(url: string, options?: RequestOptions): Promise<LightMyRequestResponse>;
  createKey(scopes: string[], extra?: Record<string, unknown>): Promise<CreatedKey>;
  /** Listens on a free loopback port (for tests that need real sockets: streaming); returns the base URL. */
  listen(): Promise<string>;
  revokeKey(id: string): Promise<void>;
}

export interface HarnessOptions {
  env?: Record<string, string>;
  clock?: TestClock;
  /** Processing steps for inbound events; a worker runs them in the background. */
  steps?: ProcessStep[];
  /** Resolves host names for the SSRF guard of `services.outbound`; the system resolver by default (there is no DNS here). */
  resolver?: Resolver;
  /** A second instance on this harness's store (and root secret), as another process would be: its own services, worker and dispatcher. */
  sharing?: Harness;
}

/**
 * The real app on a temp SQLite file, or on a fresh PostgreSQL schema when
 * PORTCULLIS_TEST_DATABASE_URL is set, with an initialised admin key. Torn
 * down after the test.
 */
export async function startHarness(t: TestContext, options: HarnessOptions = {}): Promise<Harness> {
  const dataDir = mkdtempSync(join(tmpdir(), 'portcullis-test-'));
  const shared = options.sharing;
  const storeConfig = shared
    ? { databaseUrl: shared.config.databaseUrl, databaseSchema: shared.config.databaseSchema, cleanup: async () => undefined }
    : await testStoreConfig(dataDir);
  const config = loadConfig({
    env: {
      PORTCULLIS_DATA_DIR: dataDir,
      PORTCULLIS_DATABASE_URL: storeConfig.databaseUrl,
      PORTCULLIS_DATABASE_SCHEMA: storeConfig.databaseSchema,
      PORTCULLIS_LOG_LEVEL: 'info',
      PORTCULLIS_PROCESSING: JSON.stringify({ pollMs: 20, backoffBaseMs: 1000 }),
      ...options.env,
    },
  });
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(chunk.toString('utf8'));
      done();
    },
  });
  const clock = options.clock ?? testClock();
  const rootSecret = shared?.rootSecret ?? generateRootSecret();
  const services = await createServices(config, { logger: createLogger('info', sink), clock, rootSecret, processSteps: options.steps ?? [], ...(options.resolver ? { resolver: options.resolver } : {}) });
  let app: FastifyInstance | null = null;
  let background: Background | null = null;
  // Cleaned up even when the app fails to start (a test may expect that); a
  // sharing instance, started later, is stopped before the store is dropped.
  onCleanup(t, async () => {
    await storeConfig.cleanup();
    rmSync(dataDir, { recursive: true, force: true });
  });
  onCleanup(t, async () => {
    await background?.stop();
    await app?.close();
    await services.close();
  });
  const boot = shared ? { adminKey: shared.adminKey } : await bootstrap(services);
  if ('created' in boot && !boot.created) throw new Error('fresh store was already bootstrapped');
  app = await buildApp(services);
  await app.ready();
  background = startBackground(services, services.logger);

  const request = async (method: string, url: string, opts: RequestOptions = {}): Promise<LightMyRequestResponse> => {
    const headers: Record<string, string> = { ...opts.headers };
    const key = opts.key === undefined ? boot.adminKey : opts.key;
    if (key !== null) headers.authorization ??= `Bearer ${key}`;
    let payload: string | Buffer | undefined = opts.payload;
    if (opts.body !== undefined) {
      payload = JSON.stringify(opts.body);
      headers['content-type'] ??= 'application/json';
    }
    return app!.inject({ method: method as 'GET', url, headers, ...(payload !== undefined ? { payload } : {}) });
  };

  const harness: Harness = {
    app: app!,
    services,
    config,
    engine: TEST_ENGINE,
    adminKey: boot.adminKey,
    clock,
    dataDir,
    rootSecret,
    logText: () => lines.join(''),
    request,
    get: (url, o) => request('GET', url, o),
    post: (url, o) => request('POST', url, o),
    patch: (url, o) => request('PATCH', url, o),
    async createKey(scopes, extra = {}) {
      const res = await request('POST', '/v1/keys', { body: { name: 'test', scopes, ...extra } });
      if (res.statusCode !== 201) throw new Error(`createKey: ${res.statusCode} ${res.body}`);
      const body = res.json<{ id: string; secret: string }>();
      return { id: body.id, secret: body.secret };
    },
    async listen() {
      return app!.listen({ host: '127.0.0.1', port: 0 });
    },
    async revokeKey(id) {
      const res = await request('POST', `/v1/keys/${id}/revoke`);
      if (res.statusCode !== 200) throw new Error(`revokeKey: ${res.statusCode} ${res.body}`);
    },
  };
  return harness;
}
