import type { Command } from 'commander';
import type { CreateSourceRequest, SourceResponse, SourceWithSecretResponse, UpdateSourceRequest } from '../../sdk/client.ts';
import { clientFrom, parseInteger, parseJsonObject, wantsJson } from './client.ts';
import { printJson, printRecord, printTable } from './output.ts';

const LIST_COLUMNS = ['id', 'slug', 'name', 'type', 'url', 'dedupWindowSeconds', 'bodyLimit', 'createdAt'];

function show(cmd: Command, source: SourceResponse | SourceWithSecretResponse): void {
  if (wantsJson(cmd)) return printJson(source);
  printRecord(source as unknown as Record<string, unknown>);
  if ('secret' in source) process.stderr.write('\nThe secret is shown once (reveal-secret shows it again). Store it at the provider now.\n');
}

interface SettingFlags {
  slug?: string;
  dedupWindow?: string;
  bodyLimit?: string;
  rateLimitPolicy?: string;
  rateLimitMode?: string;
  generic?: string;
  metadata?: string;
}

/** The settings both create and update take, from their flags. */
function settings(flags: SettingFlags): Partial<CreateSourceRequest> {
  return {
    ...(flags.dedupWindow !== undefined ? { dedupWindowSeconds: parseInteger(flags.dedupWindow, '--dedup-window') } : {}),
    ...(flags.bodyLimit !== undefined ? { bodyLimit: parseInteger(flags.bodyLimit, '--body-limit') } : {}),
    ...(flags.rateLimitMode !== undefined ? { rateLimitMode: flags.rateLimitMode } : {}),
    ...(flags.generic !== undefined ? { generic: parseJsonObject(flags.generic, '--generic') as CreateSourceRequest['generic'] } : {}),
    ...(flags.metadata !== undefined ? { metadata: parseJsonObject(flags.metadata, '--metadata') } : {}),
  };
}

function withSettingFlags(command: Command): Command {
  return command
    .option('--dedup-window <seconds>', 'how long a repeated delivery is recognised (default 259200)')
    .option('--body-limit <bytes>', 'largest delivery accepted')
    .option('--rate-limit-policy <name>', 'a configured rate-limit policy ("none" on update removes it)')
    .option('--rate-limit-mode <mode>', 'reject (429) or throttle (accept, process slower)')
    .option('--generic <json>', 'signing scheme of a generic source, e.g. {"signatureHeader":"x-signature","prefix":"sha256="}')
    .option('--metadata <json>', 'a JSON object to attach');
}

/** `portcullis sources …`: one command per API operation on /v1/sources. */
export function registerSourceCommands(program: Command): void {
  const sources = program.command('sources').description('Manage inbound webhook sources');

  withSettingFlags(
    sources
      .command('create')
      .description('Create a source; prints its secret once')
      .requiredOption('--name <name>', 'what the source is')
      .requiredOption('--type <type>', 'github, huggingface, stripe, standard-webhooks, shopify, slack or generic')
      .option('--slug <slug>', 'the URL becomes /in/<slug>')
      .option('--secret <secret>', "the provider's signing secret (Stripe, Shopify, Slack); generated otherwise")
      .option('--idempotency-key <key>', 'makes the request safe to retry'),
  ).action(async (flags: SettingFlags & { name: string; type: string; secret?: string; idempotencyKey?: string }, cmd: Command) => {
    const body: CreateSourceRequest = {
      name: flags.name,
      type: flags.type,
      ...(flags.slug ? { slug: flags.slug } : {}),
      ...(flags.secret ? { secret: flags.secret } : {}),
      ...(flags.rateLimitPolicy ? { rateLimitPolicy: flags.rateLimitPolicy } : {}),
      ...settings(flags),
    };
    show(cmd, await clientFrom(cmd).sources.create(body, flags.idempotencyKey ? { idempotencyKey: flags.idempotencyKey } : {}));
  });

  sources
    .command('list')
    .description('List sources')
    .option('--limit <n>', 'page size (1-250)')
    .option('--cursor <cursor>', 'continue from a previous page')
    .action(async (opts: { limit?: string; cursor?: string }, cmd: Command) => {
      const page = await clientFrom(cmd).sources.list({
        ...(opts.limit !== undefined ? { limit: parseInteger(opts.limit, '--limit') } : {}),
        ...(opts.cursor ? { cursor: opts.cursor } : {}),
      });
      if (wantsJson(cmd)) return printJson(page);
      printTable(page.data as unknown as Record<string, unknown>[], LIST_COLUMNS);
      if (page.nextCursor) process.stdout.write(`\nmore: --cursor ${page.nextCursor}\n`);
    });

  sources
    .command('get <id>')
    .description('Show one source (without its secret)')
    .action(async (id: string, _opts: unknown, cmd: Command) => show(cmd, await clientFrom(cmd).sources.get(id)));

  withSettingFlags(
    sources
      .command('update <id>')
      .description("Change a source's name, slug or settings")
      .option('--name <name>')
      .option('--slug <slug>', '"none" removes it (the URL becomes /in/<id>)'),
  ).action(async (id: string, flags: SettingFlags & { name?: string }, cmd: Command) => {
    const body: UpdateSourceRequest = {
      ...(flags.name !== undefined ? { name: flags.name } : {}),
      ...(flags.slug !== undefined ? { slug: flags.slug === 'none' ? null : flags.slug } : {}),
      ...(flags.rateLimitPolicy !== undefined ? { rateLimitPolicy: flags.rateLimitPolicy === 'none' ? null : flags.rateLimitPolicy } : {}),
      ...settings(flags),
    };
    show(cmd, await clientFrom(cmd).sources.update(id, body));
  });

  sources
    .command('delete <id>')
    .description('Delete a source: its URL stops accepting deliveries')
    .action(async (id: string, _opts: unknown, cmd: Command) => {
      await clientFrom(cmd).sources.delete(id);
      if (wantsJson(cmd)) printJson({ deleted: id });
      else process.stdout.write(`deleted ${id}\n`);
    });

  sources
    .command('reveal-secret <id>')
    .description("Print a source's secret (and the previous one during a rotation); logged by the server")
    .action(async (id: string, _opts: unknown, cmd: Command) => {
      const revealed = await clientFrom(cmd).sources.revealSecret(id);
      if (wantsJson(cmd)) printJson(revealed);
      else printRecord(revealed as unknown as Record<string, unknown>);
    });

  sources
    .command('rotate-secret <id>')
    .description('Give a source a new secret; the previous one keeps working for --grace seconds')
    .option('--secret <secret>', 'the new secret (generated otherwise)')
    .option('--grace <seconds>', 'how long the previous secret keeps being accepted', '0')
    .action(async (id: string, opts: { secret?: string; grace: string }, cmd: Command) => {
      const body = { gracePeriodSeconds: parseInteger(opts.grace, '--grace'), ...(opts.secret ? { secret: opts.secret } : {}) };
      show(cmd, await clientFrom(cmd).sources.rotateSecret(id, body));
    });
}
