import type { Command } from 'commander';
import type { EventOptions } from '../../sdk/client.ts';
import { clientFrom, parseInteger, wantsJson } from './client.ts';
import { printJson, printRecord, printTable } from './output.ts';

const LIST_COLUMNS = ['id', 'sourceId', 'type', 'status', 'deliveryId', 'receivedAt'];

interface FilterFlags {
  source?: string;
  type?: string;
  status?: string;
  from?: string;
  to?: string;
  limit?: string;
}

/** The event filter both `list` and `replay-matching` take. */
function withFilterFlags(command: Command): Command {
  return command
    .option('--source <id>', 'only this source')
    .option('--type <type>', 'exact type, or a prefix with .* (pull_request.*)')
    .option('--status <status>', 'pending, processed or dead')
    .option('--from <time>', 'received at or after (RFC 3339)')
    .option('--to <time>', 'received before (RFC 3339)');
}

function filterFrom(flags: FilterFlags): EventOptions {
  return {
    ...(flags.source ? { source: flags.source } : {}),
    ...(flags.type ? { type: flags.type } : {}),
    ...(flags.status ? { status: flags.status } : {}),
    ...(flags.from ? { from: flags.from } : {}),
    ...(flags.to ? { to: flags.to } : {}),
    ...(flags.limit !== undefined ? { limit: parseInteger(flags.limit, '--limit') } : {}),
  };
}

/** `portcullis events …`: GET /v1/events, GET /v1/events/{id}, POST /v1/events/{id}/replay. */
export function registerEventCommands(program: Command): void {
  const events = program.command('events').description('Inspect and replay inbound events');

  withFilterFlags(events.command('list').description('Events in arrival order'))
    .option('--limit <n>', 'page size (1-250)')
    .option('--cursor <cursor>', 'continue from a previous page')
    .action(async (flags: FilterFlags & { cursor?: string }, cmd: Command) => {
      const page = await clientFrom(cmd).events.list({ ...filterFrom(flags), ...(flags.cursor ? { cursor: flags.cursor } : {}) });
      if (wantsJson(cmd)) return printJson(page);
      printTable(page.data as unknown as Record<string, unknown>[], LIST_COLUMNS);
      if (page.nextCursor) process.stdout.write(`\nmore: --cursor ${page.nextCursor}\n`);
    });

  events
    .command('get <id>')
    .description('One event with its body, headers and processing history')
    .action(async (id: string, _opts: unknown, cmd: Command) => {
      const event = await clientFrom(cmd).events.get(id);
      if (wantsJson(cmd)) return printJson(event);
      const { jobs, headers, body: _body, ...rest } = event;
      printRecord(rest as unknown as Record<string, unknown>);
      process.stdout.write('\nheaders\n');
      printRecord(headers);
      process.stdout.write('\nattempts\n');
      printTable(
        jobs.flatMap((j) => j.attempts.map((a) => ({ job: j.id, attempt: a.attempt, outcome: a.outcome, finishedAt: a.finishedAt, error: a.error ?? '' }))),
        ['job', 'attempt', 'outcome', 'finishedAt', 'error'],
      );
    });

  withFilterFlags(events.command('replay-matching').description('Queue every event matching the filter for processing again (at least one filter)'))
    .option('--limit <n>', 'at most this many (default 1000)')
    .action(async (flags: FilterFlags, cmd: Command) => {
      const result = await clientFrom(cmd).events.replayMatching(filterFrom(flags));
      if (wantsJson(cmd)) printJson(result);
      else process.stdout.write(`queued ${result.replayed} event(s) again\n`);
    });

  events
    .command('replay <id>')
    .description('Queue an event for processing again')
    .action(async (id: string, _opts: unknown, cmd: Command) => {
      const result = await clientFrom(cmd).events.replay(id);
      if (wantsJson(cmd)) printJson(result);
      else process.stdout.write(`queued ${result.eventId} again (job ${result.jobId})\n`);
    });
}
