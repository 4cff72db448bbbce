import type { Command } from 'commander';
import type { UsageListResponse, UsageOptions } from '../../sdk/client.ts';
import { clientFrom, parseInteger, wantsJson } from './client.ts';
import { printJson, printTable } from './output.ts';

const COLUMNS = ['period', 'keyId', 'route', 'requests', 'units'];

interface UsageFlags {
  key?: string;
  route?: string;
  from?: string;
  to?: string;
  month?: boolean;
  limit?: string;
  cursor?: string;
  all?: boolean;
}

/** `portcullis usage [list]`: the metering ledger, GET /v1/usage. */
export function registerUsageCommands(program: Command): void {
  const usage = program.command('usage').description('Show usage (requests and cost units) by key, route and period');
  usage
    .command('list', { isDefault: true })
    .description('Usage rows for a time range (default: this month so far)')
    .option('--key <id>', 'only this key')
    .option('--route <route>', 'only this route, e.g. "GET /v1/keys/{id}"')
    .option('--from <day>', 'first UTC day, YYYY-MM-DD (default: the first of this month)')
    .option('--to <day>', 'last UTC day, YYYY-MM-DD (default: today)')
    .option('--month', 'one row per month instead of per day')
    .option('--limit <n>', 'page size (1-250)')
    .option('--cursor <cursor>', 'continue from a previous page')
    .option('--all', 'follow cursors to the end')
    .action(async (flags: UsageFlags, cmd: Command) => {
      const client = clientFrom(cmd);
      const options: UsageOptions = {
        ...(flags.key ? { keyId: flags.key } : {}),
        ...(flags.route ? { route: flags.route } : {}),
        ...(flags.from ? { from: flags.from } : {}),
        ...(flags.to ? { to: flags.to } : {}),
        ...(flags.month ? { granularity: 'month' } : {}),
        ...(flags.limit !== undefined ? { limit: parseInteger(flags.limit, '--limit') } : {}),
        ...(flags.cursor ? { cursor: flags.cursor } : {}),
      };
      let page: UsageListResponse;
      if (flags.all) {
        const data: UsageListResponse['data'] = [];
        for await (const row of client.paginate((o) => client.usage.list({ ...options, ...o }), options.limit)) data.push(row);
        page = { data, nextCursor: null };
      } else page = await client.usage.list(options);
      if (wantsJson(cmd)) return printJson(page);
      printTable(page.data as unknown as Record<string, unknown>[], COLUMNS);
      if (page.nextCursor) process.stdout.write(`\nmore: --cursor ${page.nextCursor}\n`);
    });
}
