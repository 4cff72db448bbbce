import type { Command } from 'commander';
import type { ConsumerGroupResponse, CreateConsumerGroupRequest, LeaseOptions, SettleResponse } from '../../sdk/client.ts';
import { clientFrom, parseInteger, wantsJson } from './client.ts';
import { printJson, printRecord, printTable } from './output.ts';

const LIST_COLUMNS = ['id', 'name', 'sourceId', 'types', 'startAt', 'visibilityTimeoutSeconds', 'createdAt'];
const LEASE_COLUMNS = ['receipt', 'deliveries', 'eventId', 'type', 'receivedAt', 'visibleAt'];

function show(cmd: Command, group: ConsumerGroupResponse): void {
  if (wantsJson(cmd)) return printJson(group);
  printRecord({ ...group, types: group.types.join(', ') || '(all)' });
}

function printSettled(cmd: Command, result: SettleResponse, verb: string): void {
  if (wantsJson(cmd)) return printJson(result);
  process.stdout.write(`${verb} ${result.settled.length}\n`);
  for (const receipt of result.stale) process.stdout.write(`stale ${receipt} (its lease passed to another consumer, or it was settled already)\n`);
}

function parseSeconds(value: string, flag: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0) throw new Error(`${flag} must be a number of seconds`);
  return n;
}

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

/** `portcullis consumer-groups …`: one command per API operation on /v1/consumer-groups. */
export function registerConsumerGroupCommands(program: Command): void {
  const groups = program.command('consumer-groups').description('Pull events over HTTP: lease, ack, nack');

  groups
    .command('create')
    .description('Create a consumer group')
    .requiredOption('--name <name>', 'unique name (lower-case letters, digits, . _ -)')
    .option('--source <id>', "only this source's events")
    .option('--type <type>', 'an event type, exact or prefix.* (repeat for more; all types when absent)', collect)
    .option('--start <when>', 'now (default), earliest, or an RFC 3339 time')
    .option('--visibility-timeout <seconds>', 'how long a leased event stays hidden unless acknowledged (default 30)')
    .option('--idempotency-key <key>', 'makes the request safe to retry')
    .action(async (flags: { name: string; source?: string; type?: string[]; start?: string; visibilityTimeout?: string; idempotencyKey?: string }, cmd: Command) => {
      const body: CreateConsumerGroupRequest = {
        name: flags.name,
        ...(flags.source ? { source: flags.source } : {}),
        ...(flags.type ? { types: flags.type } : {}),
        ...(flags.start ? { start: flags.start } : {}),
        ...(flags.visibilityTimeout !== undefined ? { visibilityTimeoutSeconds: parseInteger(flags.visibilityTimeout, '--visibility-timeout') } : {}),
      };
      show(cmd, await clientFrom(cmd).consumerGroups.create(body, flags.idempotencyKey ? { idempotencyKey: flags.idempotencyKey } : {}));
    });

  groups
    .command('list')
    .description('List consumer groups')
    .option('--limit <n>', 'page size (1-250)')
    .option('--cursor <cursor>', 'continue from a previous page')
    .action(async (opts: { limit?: string; cursor?: string }, cmd: Command) => {
      const page = await clientFrom(cmd).consumerGroups.list({
        ...(opts.limit !== undefined ? { limit: parseInteger(opts.limit, '--limit') } : {}),
        ...(opts.cursor ? { cursor: opts.cursor } : {}),
      });
      if (wantsJson(cmd)) return printJson(page);
      printTable(page.data.map((g) => ({ ...g, types: g.types.join(',') || '(all)' })), LIST_COLUMNS);
      if (page.nextCursor) process.stdout.write(`\nmore: --cursor ${page.nextCursor}\n`);
    });

  groups
    .command('get <group>')
    .description('Show a group (by id or name) and its unacknowledged events')
    .action(async (id: string, _opts: unknown, cmd: Command) => show(cmd, await clientFrom(cmd).consumerGroups.get(id)));

  groups
    .command('delete <group>')
    .description('Delete a group, its position and its unacknowledged events (the events stay)')
    .action(async (id: string, _opts: unknown, cmd: Command) => {
      await clientFrom(cmd).consumerGroups.delete(id);
      if (wantsJson(cmd)) printJson({ deleted: id });
      else process.stdout.write(`deleted ${id}\n`);
    });

  groups
    .command('lease <group>')
    .description('Lease events; with --json, each comes with its headers and body')
    .option('--max <n>', 'events at most (1-100, default 10)')
    .option('--wait <seconds>', 'wait this long for an event when none is there (long poll, at most 60)')
    .option('--visibility-timeout <seconds>', "how long they stay leased (the group's default otherwise)")
    .action(async (group: string, flags: { max?: string; wait?: string; visibilityTimeout?: string }, cmd: Command) => {
      const options: LeaseOptions = {
        ...(flags.max !== undefined ? { max: parseInteger(flags.max, '--max') } : {}),
        ...(flags.wait !== undefined ? { wait: parseSeconds(flags.wait, '--wait') } : {}),
        ...(flags.visibilityTimeout !== undefined ? { visibilityTimeout: parseInteger(flags.visibilityTimeout, '--visibility-timeout') } : {}),
      };
      const leased = await clientFrom(cmd).consumerGroups.lease(group, options);
      if (wantsJson(cmd)) return printJson(leased);
      printTable(
        leased.data.map((l) => ({ receipt: l.receipt, deliveries: l.deliveries, eventId: l.event.id, type: l.event.type, receivedAt: l.event.receivedAt, visibleAt: l.visibleAt })),
        LEASE_COLUMNS,
      );
    });

  groups
    .command('ack <group> <receipts...>')
    .description('Acknowledge leased events: the group never hands them out again')
    .action(async (group: string, receipts: string[], _opts: unknown, cmd: Command) => printSettled(cmd, await clientFrom(cmd).consumerGroups.ack(group, receipts), 'acknowledged'));

  groups
    .command('nack <group> <receipts...>')
    .description('Give leased events back to the group')
    .option('--delay <seconds>', 'hand them out again after this long (default at once)')
    .action(async (group: string, receipts: string[], flags: { delay?: string }, cmd: Command) => {
      const body = { receipts, ...(flags.delay !== undefined ? { delaySeconds: parseInteger(flags.delay, '--delay') } : {}) };
      printSettled(cmd, await clientFrom(cmd).consumerGroups.nack(group, body), 'released');
    });
}
