import type { Command } from 'commander';
import { clientFrom, parseInteger, parseJsonObject, wantsJson } from './client.ts';
import { printJson, printRecord, printTable } from './output.ts';

/** `portcullis messages …`: POST /v1/messages, GET /v1/messages[/{id}]. */
export function registerMessageCommands(program: Command): void {
  const messages = program.command('messages').description('Publish messages to subscribed endpoints');

  messages
    .command('create')
    .description('Publish a message (its payload is a JSON object)')
    .requiredOption('--type <eventType>', 'dot-separated event type, e.g. invoice.paid')
    .requiredOption('--payload <json>', 'the JSON object to deliver')
    .option('--idempotency-key <key>', 'makes the request safe to retry')
    .action(async (flags: { type: string; payload: string; idempotencyKey?: string }, cmd: Command) => {
      const created = await clientFrom(cmd).messages.create({ eventType: flags.type, payload: parseJsonObject(flags.payload, '--payload') }, flags.idempotencyKey ? { idempotencyKey: flags.idempotencyKey } : {});
      if (wantsJson(cmd)) return printJson(created);
      process.stdout.write(`published ${created.id} (${created.deliveries} deliver${created.deliveries === 1 ? 'y' : 'ies'} queued)\n`);
    });

  messages
    .command('list')
    .description('List messages')
    .option('--type <eventType>', 'exact type, or a prefix with .*')
    .option('--limit <n>', 'page size (1-250)')
    .option('--cursor <cursor>', 'continue from a previous page')
    .action(async (opts: { type?: string; limit?: string; cursor?: string }, cmd: Command) => {
      const page = await clientFrom(cmd).messages.list({
        ...(opts.type ? { eventType: opts.type } : {}),
        ...(opts.limit !== undefined ? { limit: parseInteger(opts.limit, '--limit') } : {}),
        ...(opts.cursor ? { cursor: opts.cursor } : {}),
      });
      if (wantsJson(cmd)) return printJson(page);
      printTable(page.data as unknown as Record<string, unknown>[], ['id', 'eventType', 'createdAt']);
      if (page.nextCursor) process.stdout.write(`\nmore: --cursor ${page.nextCursor}\n`);
    });

  messages
    .command('get <id>')
    .description('Show a message and its payload')
    .action(async (id: string, _opts: unknown, cmd: Command) => {
      const message = await clientFrom(cmd).messages.get(id);
      if (wantsJson(cmd)) return printJson(message);
      printRecord({ ...message, payload: JSON.stringify(message.payload) });
    });
}
