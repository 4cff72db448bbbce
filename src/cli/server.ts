import type { Command } from 'commander';
import { loadConfig, redactConfig } from '../config/load.ts';
import type { Config, Setting } from '../config/schema.ts';
import { printJson, printRecord } from './output.ts';
import { wantsJson } from './client.ts';

interface ServeFlags {
  config?: string;
  host?: string;
  port?: string;
  role?: string;
  dataDir?: string;
  databaseUrl?: string;
  tlsCert?: string;
  tlsKey?: string;
}

function configFrom(flags: ServeFlags): Config {
  const overrides: Partial<Record<Setting, unknown>> = {
    host: flags.host,
    port: flags.port === undefined ? undefined : /^\d+$/.test(flags.port) ? Number(flags.port) : flags.port,
    role: flags.role,
    dataDir: flags.dataDir,
    databaseUrl: flags.databaseUrl,
    tlsCert: flags.tlsCert,
    tlsKey: flags.tlsKey,
  };
  return loadConfig({ ...(flags.config ? { file: flags.config } : {}), overrides });
}

// The server, its stores and Fastify load only for the commands that run them,
// so the API commands (`keys …`) start quickly.
async function serverModules() {
  const [logger, boot, services, serve, open] = await Promise.all([
    import('../server/logger.ts'),
    import('../server/bootstrap.ts'),
    import('../server/services.ts'),
    import('../server/serve.ts'),
    import('../storage/open.ts'),
  ]);
  return { createLogger: logger.createLogger, bootstrap: boot.bootstrap, createServices: services.createServices, startServer: serve.startServer, openStore: open.openStore };
}

const withStoreFlags = (cmd: Command): Command =>
  cmd
    .option('--config <file>', 'YAML or JSON configuration file (env PORTCULLIS_CONFIG)')
    .option('--data-dir <dir>', 'data folder (env PORTCULLIS_DATA_DIR, default ./data)')
    .option('--database-url <url>', 'sqlite:<path> or postgres://… (env PORTCULLIS_DATABASE_URL)');

/** `serve`, `init`, `migrate` and `config print`: commands that run on this machine. */
export function registerServerCommands(program: Command): void {
  withStoreFlags(program.command('serve').description('Run the API (initialising the store on first start)'))
    .option('--host <host>', 'listen address (env PORTCULLIS_HOST, default 127.0.0.1)')
    .option('--port <port>', 'listen port (env PORTCULLIS_PORT, default 8080)')
    .option('--role <role>', 'all (default), api (the API only) or worker (jobs, deliveries, retention; only health and metrics on its port) (env PORTCULLIS_ROLE)')
    .option('--tls-cert <file>', 'PEM certificate: serve HTTPS (env PORTCULLIS_TLS_CERT)')
    .option('--tls-key <file>', 'PEM private key (env PORTCULLIS_TLS_KEY)')
    .action(async (flags: ServeFlags) => {
      const config = configFrom(flags);
      const { createLogger, startServer } = await serverModules();
      const logger = createLogger(config.logLevel);
      const server = await startServer(config, { logger });
      const stop = (signal: string): void => {
        logger.info({ signal }, 'shutting down');
        server.close().then(
          () => process.exit(0),
          (err: Error) => {
            logger.error({ err: err.message }, 'shutdown failed');
            process.exit(1);
          },
        );
      };
      process.once('SIGTERM', stop);
      process.once('SIGINT', stop);
    });

  withStoreFlags(program.command('init').description('Create the store and the first admin key, printed once')).action(async (flags: ServeFlags, cmd: Command) => {
    const config = configFrom(flags);
    const { bootstrap, createLogger, createServices } = await serverModules();
    const services = await createServices(config, { logger: createLogger('silent') });
    try {
      const result = await bootstrap(services);
      if (wantsJson(cmd)) {
        printJson(result.created ? { adminKey: result.adminKey, keyId: result.keyId, path: result.path } : { adminKey: null, alreadyInitialised: true, path: result.path });
      } else if (result.created) {
        process.stdout.write(`${result.adminKey}\n`);
        process.stderr.write(`This is the first admin key (id ${result.keyId}), shown once; a copy is in ${result.path} (mode 0600).\n`);
      } else {
        process.stderr.write(`The store is already initialised; no new key was created. The first admin key was written to ${result.path}.\n`);
      }
    } finally {
      await services.close();
    }
  });

  withStoreFlags(program.command('migrate').description('Apply pending store migrations')).action(async (flags: ServeFlags, cmd: Command) => {
    const config = configFrom(flags);
    const { openStore } = await serverModules();
    const store = openStore(config);
    try {
      const applied = await store.migrate();
      if (wantsJson(cmd)) printJson({ applied, engine: store.engine });
      else process.stdout.write(`${applied} migration(s) applied (${store.engine})\n`);
    } finally {
      await store.close();
    }
  });

  const configCmd = program.command('config').description('Inspect configuration');
  configCmd
    .command('print')
    .description('Print the effective configuration, secrets redacted')
    .option('--config <file>', 'YAML or JSON configuration file (env PORTCULLIS_CONFIG)')
    .action((flags: ServeFlags, cmd: Command) => {
      const shown = redactConfig(configFrom(flags));
      if (wantsJson(cmd)) printJson(shown);
      else printRecord(shown);
    });
}
