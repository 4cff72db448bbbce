import type { Command } from 'commander';
import type { ApiKey, ApiKeyWithSecret, UpdateKeyRequest } from '../../sdk/client.ts';
import { clientFrom, parseJsonObject, parseInteger, wantsJson } from './client.ts';
import { printJson, printRecord, printTable } from './output.ts';

const LIST_COLUMNS = ['id', 'name', 'customer', 'prefix', 'scopes', 'status', 'expiresAt', 'createdAt'];

function show(cmd: Command, key: ApiKey | ApiKeyWithSecret): void {
  if (wantsJson(cmd)) return printJson(key);
  printRecord(key as unknown as Record<string, unknown>);
  if ('secret' in key) process.stderr.write('\nThe secret is shown once. Store it now.\n');
}

interface KeyFlags {
  customer?: string;
  metadata?: string;
  expiresAt?: string;
  rateLimitPolicy?: string;
  quota?: string;
  quotaSoftLimit?: string;
}

function quotaFrom(opts: KeyFlags): { limit: number; softLimit?: number } {
  const limit = parseInteger(opts.quota!, '--quota');
  return opts.quotaSoftLimit === undefined ? { limit } : { limit, softLimit: parseInteger(opts.quotaSoftLimit, '--quota-soft-limit') };
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

const collect = (value: string, previous: string[] = []): string[] => [...previous, ...value.split(',').map((s) => s.trim()).filter(Boolean)];

/** `portcullis keys …`: one command per API operation on /v1/keys. */
export function registerKeyCommands(program: Command): void {
  const keys = program.command('keys').description('Manage API keys');

  keys
    .command('create')
    .description('Create an API key; prints its secret once')
    .requiredOption('--name <name>', 'what the key is for')
    .requiredOption('--scope <scope>', 'a scope to grant (repeat, or comma-separate)', collect)
    .option('--customer <id>', 'who the key belongs to')
    .option('--metadata <json>', 'a JSON object to attach')
    .option('--expires-at <time>', 'RFC 3339 time after which the key stops working')
    .option('--rate-limit-policy <name>', 'a rate-limit policy from the configuration (default: rateLimits.perKey)')
    .option('--quota <units>', 'monthly quota in cost units (default: unlimited)')
    .option('--quota-soft-limit <units>', 'warn from this many units on (needs --quota)')
    .option('--idempotency-key <key>', 'makes the request safe to retry')
    .action(async (opts: KeyFlags & { name: string; scope: string[]; idempotencyKey?: string }, cmd: Command) => {
      const key = await clientFrom(cmd).keys.create(
        {
          name: opts.name,
          scopes: opts.scope,
          ...(opts.customer !== undefined ? { customer: opts.customer } : {}),
          ...(opts.metadata !== undefined ? { metadata: parseJsonObject(opts.metadata, '--metadata') } : {}),
          ...(opts.expiresAt !== undefined ? { expiresAt: opts.expiresAt } : {}),
          ...(opts.rateLimitPolicy !== undefined ? { rateLimitPolicy: opts.rateLimitPolicy } : {}),
          ...(opts.quota !== undefined ? { quota: quotaFrom(opts) } : {}),
        },
        opts.idempotencyKey ? { idempotencyKey: opts.idempotencyKey } : {},
      );
      show(cmd, key);
    });

  keys
    .command('list')
    .description('List API keys')
    .option('--limit <n>', 'page size (1-250)')
    .option('--cursor <cursor>', 'continue from a previous page')
    .option('--all', 'follow cursors to the end')
    .action(async (opts: { limit?: string; cursor?: string; all?: boolean }, cmd: Command) => {
      const client = clientFrom(cmd);
      const limit = opts.limit !== undefined ? parseInteger(opts.limit, '--limit') : undefined;
      if (opts.all) {
        const data: ApiKey[] = [];
        for await (const k of client.paginate((o) => client.keys.list(o), limit)) data.push(k);
        return wantsJson(cmd) ? printJson({ data, nextCursor: null }) : printTable(data as unknown as Record<string, unknown>[], LIST_COLUMNS);
      }
      const page = await client.keys.list({ ...(limit !== undefined ? { limit } : {}), ...(opts.cursor ? { cursor: opts.cursor } : {}) });
      if (wantsJson(cmd)) return printJson(page);
      printTable(page.data as unknown as Record<string, unknown>[], LIST_COLUMNS);
      if (page.nextCursor) process.stdout.write(`\nmore: --cursor ${page.nextCursor}\n`);
    });

  keys
    .command('get <id>')
    .description('Show one API key')
    .action(async (id: string, _opts: unknown, cmd: Command) => show(cmd, await clientFrom(cmd).keys.get(id)));

  keys
    .command('update <id>')
    .description("Change a key's name, customer, metadata, scopes, expiry or rate-limit policy")
    .option('--name <name>')
    .option('--customer <id>', 'owner; "none" clears it')
    .option('--metadata <json>', 'replaces the metadata object')
    .option('--scope <scope>', 'replaces the scopes (repeat, or comma-separate)', collect)
    .option('--expires-at <time>', 'RFC 3339 time; "never" clears it')
    .option('--rate-limit-policy <name>', 'a rate-limit policy from the configuration; "default" clears it')
    .option('--quota <units>', 'monthly quota in cost units; "none" removes it')
    .option('--quota-soft-limit <units>', 'warn from this many units on (with --quota)')
    .action(async (id: string, opts: KeyFlags & { name?: string; scope?: string[] }, cmd: Command) => {
      const body: UpdateKeyRequest = {};
      if (opts.name !== undefined) body.name = opts.name;
      if (opts.customer !== undefined) body.customer = opts.customer === 'none' ? null : opts.customer;
      if (opts.metadata !== undefined) body.metadata = parseJsonObject(opts.metadata, '--metadata');
      if (opts.scope !== undefined) body.scopes = opts.scope;
      if (opts.expiresAt !== undefined) body.expiresAt = opts.expiresAt === 'never' ? null : opts.expiresAt;
      if (opts.rateLimitPolicy !== undefined) body.rateLimitPolicy = opts.rateLimitPolicy === 'default' ? null : opts.rateLimitPolicy;
      if (opts.quota !== undefined) body.quota = opts.quota === 'none' ? null : quotaFrom(opts);
      show(cmd, await clientFrom(cmd).keys.update(id, body));
    });

  keys
    .command('revoke <id>')
    .description('Revoke an API key for good')
    .action(async (id: string, _opts: unknown, cmd: Command) => show(cmd, await clientFrom(cmd).keys.revoke(id)));

  keys
    .command('rotate <id>')
    .description('Give a key a new secret; prints it once')
    .option('--grace <seconds>', 'how long the previous secret keeps working', '0')
    .action(async (id: string, opts: { grace: string }, cmd: Command) => {
      show(cmd, await clientFrom(cmd).keys.rotate(id, { gracePeriodSeconds: parseInteger(opts.grace, '--grace') }));
    });

  keys
    .command('verify <key>')
    .description('Check a key as the API would, applying its rate limit and quota; exits 1 when it is not valid. "-" reads the key from stdin (keeps it out of shell history)')
    .option('--scope <scope>', 'the scope the key must hold')
    .option('--cost <units>', 'units to take from its monthly quota', '1')
    .action(async (key: string, opts: { scope?: string; cost: string }, cmd: Command) => {
      const secret = key === '-' ? (await readStdin()).trim() : key;
      const verdict = await clientFrom(cmd).keys.verify({ key: secret, cost: parseInteger(opts.cost, '--cost'), ...(opts.scope ? { scope: opts.scope } : {}) });
      if (wantsJson(cmd)) printJson(verdict);
      else printRecord(verdict as unknown as Record<string, unknown>);
      if (!verdict.valid) process.exitCode = 1;
    });
}
