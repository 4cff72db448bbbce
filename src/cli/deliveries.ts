import type { Command } from 'commander';
import type { DeliveryOptions } from '../../sdk/client.ts';
import { clientFrom, parseInteger, wantsJson } from './client.ts';
import { printJson, printRecord, printTable } from './output.ts';

const LIST_COLUMNS = ['id', 'endpointId', 'subjectId', 'eventType', 'status', 'attempts', 'nextAttemptAt', 'lastError'];

interface FilterFlags {
  endpoint?: string;
  subject?: string;
  status?: string;
  from?: string;
  to?: string;
  limit?: string;
}

function withFilterFlags(command: Command): Command {
  return command
    .option('--endpoint <id>', 'only this endpoint')
    .option('--subject <id>', 'only this message or event')
    .option('--status <status>', 'pending, sending, succeeded or dead')
    .option('--from <time>', 'created at or after (RFC 3339)')
    .option('--to <time>', 'created before (RFC 3339)')
    .option('--limit <n>', 'at most this many');
}

function filterFrom(flags: FilterFlags): DeliveryOptions {
  return {
    ...(flags.endpoint ? { endpoint: flags.endpoint } : {}),
    ...(flags.subject ? { subject: flags.subject } : {}),
    ...(flags.status ? { status: flags.status } : {}),
    ...(flags.from ? { from: flags.from } : {}),
    ...(flags.to ? { to: flags.to } : {}),
    ...(flags.limit !== undefined ? { limit: parseInteger(flags.limit, '--limit') } : {}),
  };
}

/** `portcullis deliveries …`: GET /v1/deliveries[/{id}], retry one, retry by filter. */
export function registerDeliveryCommands(program: Command): void {
  const deliveries = program.command('deliveries').description('Inspect and retry outbound deliveries');

  withFilterFlags(deliveries.command('list').description('List deliveries'))
    .option('--cursor <cursor>', 'continue from a previous page')
    .action(async (flags: FilterFlags & { cursor?: string }, cmd: Command) => {
      const page = await clientFrom(cmd).deliveries.list({ ...filterFrom(flags), ...(flags.cursor ? { cursor: flags.cursor } : {}) });
      if (wantsJson(cmd)) return printJson(page);
      printTable(page.data as unknown as Record<string, unknown>[], LIST_COLUMNS);
      if (page.nextCursor) process.stdout.write(`\nmore: --cursor ${page.nextCursor}\n`);
    });

  deliveries
    .command('get <id>')
    .description('Show a delivery and every attempt')
    .action(async (id: string, _opts: unknown, cmd: Command) => {
      const delivery = await clientFrom(cmd).deliveries.get(id);
      if (wantsJson(cmd)) return printJson(delivery);
      const { history, ...rest } = delivery;
      printRecord(rest as unknown as Record<string, unknown>);
      process.stdout.write('\n');
      printTable(history as unknown as Record<string, unknown>[], ['attempt', 'startedAt', 'statusCode', 'latencyMs', 'outcome', 'error']);
    });

  deliveries
    .command('retry <id>')
    .description('Queue a delivery again now, with a fresh retry schedule')
    .action(async (id: string, _opts: unknown, cmd: Command) => {
      const result = await clientFrom(cmd).deliveries.retry(id);
      if (wantsJson(cmd)) return printJson(result);
      process.stdout.write(`queued ${id} again\n`);
    });

  withFilterFlags(deliveries.command('retry-matching').description('Queue every delivery the filter matches again: dead ones unless --status names another (at least one filter)')).action(async (flags: FilterFlags, cmd: Command) => {
    const result = await clientFrom(cmd).deliveries.retryMatching(filterFrom(flags));
    if (wantsJson(cmd)) return printJson(result);
    process.stdout.write(`queued ${result.retried} again\n`);
  });
}
