#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { PortcullisError } from '../../sdk/client.ts';
import { StoreUnavailableError } from '../storage/store.ts';
import { registerKeyCommands } from './keys.ts';
import { registerServerCommands } from './server.ts';
import { registerUsageCommands } from './usage.ts';
import { registerSourceCommands } from './sources.ts';
import { registerEventCommands } from './events.ts';
import { registerConsumerGroupCommands } from './consumerGroups.ts';
import { registerMessageCommands } from './messages.ts';
import { registerDeliveryCommands } from './deliveries.ts';
import { registerEndpointCommands } from './endpoints.ts';

export function buildProgram(): Command {
  const program = new Command('portcullis')
    .description('Self-hosted integration edge: webhooks in and out, and a hardened public API edge.')
    .option('--url <url>', 'server URL for API commands (env PORTCULLIS_URL, default http://127.0.0.1:8080)')
    .option('--api-key <key>', 'API key for API commands (env PORTCULLIS_API_KEY, else ./data/admin.key)')
    .option('--json', 'print JSON, for scripts')
    .showHelpAfterError();
  registerServerCommands(program);
  registerKeyCommands(program);
  registerSourceCommands(program);
  registerEventCommands(program);
  registerConsumerGroupCommands(program);
  registerMessageCommands(program);
  registerDeliveryCommands(program);
  registerEndpointCommands(program);
  registerUsageCommands(program);
  return program;
}

function report(err: unknown): number {
  // Commander prints and exits on its own parse errors; a CommanderError that gets
  // here was thrown by an action (e.g. InvalidArgumentError for --limit) and is not printed yet.
  if (err instanceof CommanderError) {
    process.stderr.write(`error: ${err.message}\n`);
    return err.exitCode;
  }
  if (err instanceof PortcullisError) {
    const p = err.problem;
    process.stderr.write(p ? `error: ${p.status} ${p.code}: ${p.detail} (request ${p.requestId})\n` : `error: ${err.message}\n`);
    return 1;
  }
  if (err instanceof StoreUnavailableError) {
    const cause = err.cause as { code?: string; message?: string } | undefined;
    process.stderr.write(`error: cannot reach the store (${cause?.code ?? cause?.message ?? 'unknown error'})\n`);
    return 1;
  }
  const e = err as Error & { cause?: { code?: string } };
  if (e.name === 'TypeError' && e.message === 'fetch failed') {
    process.stderr.write(`error: cannot reach the server (${e.cause?.code ?? 'network error'}); is it running? Set --url or PORTCULLIS_URL.\n`);
    return 1;
  }
  process.stderr.write(`error: ${e.message}\n`);
  return 1;
}

try {
  await buildProgram().parseAsync(process.argv);
} catch (err) {
  process.exitCode = report(err);
}
