import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import type { CreateEndpointRequest, EndpointResponse, EndpointWithSecretResponse, UpdateEndpointRequest } from '../../sdk/client.ts';
import type { PortcullisClient } from '../../sdk/client.ts';
import { clientFrom, parseInteger, parseJsonObject, wantsJson } from './client.ts';
import { printJson, printRecord, printTable } from './output.ts';

const LIST_COLUMNS = ['id', 'url', 'enabled', 'disabledReason', 'eventTypes', 'consecutiveFailures', 'createdAt'];

function show(cmd: Command, endpoint: EndpointResponse | EndpointWithSecretResponse): void {
  if (wantsJson(cmd)) return printJson(endpoint);
  printRecord(endpoint as unknown as Record<string, unknown>);
  if ('secret' in endpoint) process.stderr.write('\nThe secret is shown once (reveal-secret shows it again). Give it to the receiver now: it verifies our signatures with it.\n');
}

const collect = (value: string, previous: string[] = []): string[] => [...previous, ...value.split(',').map((s) => s.trim()).filter(Boolean)];
const collectRaw = (value: string, previous: string[] = []): string[] => [...previous, value];

function parseHeaders(values: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const value of values) {
    const colon = value.indexOf(':');
    if (colon <= 0) throw new InvalidArgumentError(`--header must be "Name: value", not ${JSON.stringify(value)}`);
    out[value.slice(0, colon).trim()] = value.slice(colon + 1).trim();
  }
  return out;
}

function parseSchedule(value: string): number[] {
  const parts = value.split(',').map((s) => s.trim());
  return parts.map((p) => parseInteger(p, '--retry-schedule'));
}

interface SettingFlags {
  description?: string;
  type?: string[];
  source?: string[];
  header?: string[];
  rateLimit?: string;
  timeout?: string;
  retrySchedule?: string;
  metadata?: string;
}

/** The settings create and update share, but headers, from their flags ("all", "none" and "default" clear them on update). */
function settings(flags: SettingFlags): Omit<UpdateEndpointRequest, 'headers'> {
  const all = (values: string[] | undefined): string[] | undefined => (values === undefined ? undefined : values.length === 1 && values[0] === 'all' ? [] : values);
  const eventTypes = all(flags.type);
  const sourceIds = all(flags.source);
  return {
    ...(flags.description !== undefined ? { description: flags.description } : {}),
    ...(eventTypes !== undefined ? { eventTypes } : {}),
    ...(sourceIds !== undefined ? { sourceIds } : {}),
    ...(flags.rateLimit !== undefined ? { rateLimitPerSecond: flags.rateLimit === 'none' ? null : parseInteger(flags.rateLimit, '--rate-limit') } : {}),
    ...(flags.timeout !== undefined ? { timeoutSeconds: parseInteger(flags.timeout, '--timeout') } : {}),
    ...(flags.retrySchedule !== undefined ? { retrySchedule: flags.retrySchedule === 'default' ? null : parseSchedule(flags.retrySchedule) } : {}),
    ...(flags.metadata !== undefined ? { metadata: parseJsonObject(flags.metadata, '--metadata') } : {}),
  };
}

function withSettingFlags(command: Command): Command {
  return command
    .option('--description <text>', 'what the endpoint is for')
    .option('--type <type>', 'an event type it receives, exact or prefix.* (repeat, or comma-separate; every type when absent)', collect)
    .option('--source <id>', "only this source's inbound events (repeat, or comma-separate; every source when absent)", collect)
    .option('--header <name: value>', 'a header sent with every delivery (repeat for more)', collectRaw)
    .option('--rate-limit <per-second>', 'deliveries per second at most (default: no limit)')
    .option('--timeout <seconds>', 'how long an attempt may take (1-60, default 15)')
    .option('--retry-schedule <seconds,…>', "seconds before each attempt, e.g. 0,5,300 (default: the server's schedule)")
    .option('--metadata <json>', 'a JSON object to attach');
}

/**
 * An update's headers, merged by the server: --header sets one, --remove-header
 * removes one, --header none removes every header the endpoint has (read first:
 * the values of sensitive ones are never shown, their names are).
 */
async function headersPatch(client: PortcullisClient, id: string, flags: { header?: string[]; removeHeader?: string[] }): Promise<Record<string, string | null> | undefined> {
  if (flags.header === undefined && flags.removeHeader === undefined) return undefined;
  const patch: Record<string, string | null> = {};
  if (flags.header?.length === 1 && flags.header[0] === 'none') {
    const current = await client.endpoints.get(id);
    for (const name of [...Object.keys(current.headers), ...current.sensitiveHeaders]) patch[name] = null;
  } else Object.assign(patch, parseHeaders(flags.header ?? []));
  for (const name of flags.removeHeader ?? []) patch[name] = null;
  return patch;
}

/** `portcullis endpoints …`: one command per API operation on /v1/endpoints. */
export function registerEndpointCommands(program: Command): void {
  const endpoints = program.command('endpoints').description('Manage outbound webhook endpoints');

  withSettingFlags(
    endpoints
      // The URL is an argument: `--url` is the program's own option (the server to talk to).
      .command('create <url>')
      .description('Create an endpoint POSTed to at <url> (http or https); prints its signing secret once')
      .option('--secret <whsec>', 'the signing secret, whsec_<base64> (generated otherwise)')
      .option('--disabled', 'create it disabled (no deliveries until enabled)')
      .option('--idempotency-key <key>', 'makes the request safe to retry'),
  ).action(async (url: string, flags: SettingFlags & { secret?: string; disabled?: boolean; idempotencyKey?: string }, cmd: Command) => {
    const body: CreateEndpointRequest = {
      url,
      ...settings(flags),
      ...(flags.header !== undefined ? { headers: parseHeaders(flags.header) } : {}),
      ...(flags.secret ? { secret: flags.secret } : {}),
      ...(flags.disabled ? { enabled: false } : {}),
    };
    show(cmd, await clientFrom(cmd).endpoints.create(body, flags.idempotencyKey ? { idempotencyKey: flags.idempotencyKey } : {}));
  });

  endpoints
    .command('list')
    .description('List endpoints')
    .option('--limit <n>', 'page size (1-250)')
    .option('--cursor <cursor>', 'continue from a previous page')
    .action(async (opts: { limit?: string; cursor?: string }, cmd: Command) => {
      const page = await clientFrom(cmd).endpoints.list({
        ...(opts.limit !== undefined ? { limit: parseInteger(opts.limit, '--limit') } : {}),
        ...(opts.cursor ? { cursor: opts.cursor } : {}),
      });
      if (wantsJson(cmd)) return printJson(page);
      printTable(page.data as unknown as Record<string, unknown>[], LIST_COLUMNS);
      if (page.nextCursor) process.stdout.write(`\nmore: --cursor ${page.nextCursor}\n`);
    });

  endpoints
    .command('get <id>')
    .description('Show one endpoint (without its secret)')
    .action(async (id: string, _opts: unknown, cmd: Command) => show(cmd, await clientFrom(cmd).endpoints.get(id)));

  withSettingFlags(
    endpoints
      .command('update <id>')
      .description(
        "Change an endpoint's URL, filters or settings; --type all, --source all, --header none, --rate-limit none and --retry-schedule default clear them. --header sets a header and keeps the others",
      )
      .option('--remove-header <name>', 'remove one of its headers (repeat for more)', collectRaw)
      .option('--endpoint-url <url>', 'a new URL (checked by the SSRF guard again)')
      .option('--enable', 're-enable it (clears the reason it was disabled and its failure streak)')
      .option('--disable', 'stop its deliveries until it is enabled again'),
  ).action(async (id: string, flags: SettingFlags & { endpointUrl?: string; enable?: boolean; disable?: boolean; removeHeader?: string[] }, cmd: Command) => {
    if (flags.enable && flags.disable) throw new InvalidArgumentError('--enable and --disable exclude each other');
    const client = clientFrom(cmd);
    const headers = await headersPatch(client, id, flags);
    const body: UpdateEndpointRequest = {
      ...(flags.endpointUrl !== undefined ? { url: flags.endpointUrl } : {}),
      ...settings(flags),
      ...(headers ? { headers } : {}),
      ...(flags.enable ? { enabled: true } : flags.disable ? { enabled: false } : {}),
    };
    show(cmd, await client.endpoints.update(id, body));
  });

  endpoints
    .command('delete <id>')
    .description('Delete an endpoint: it gets no more deliveries')
    .action(async (id: string, _opts: unknown, cmd: Command) => {
      await clientFrom(cmd).endpoints.delete(id);
      if (wantsJson(cmd)) printJson({ deleted: id });
      else process.stdout.write(`deleted ${id}\n`);
    });

  endpoints
    .command('reveal-secret <id>')
    .description("Print an endpoint's signing secret (and the previous one during a rotation); logged by the server")
    .action(async (id: string, _opts: unknown, cmd: Command) => {
      const revealed = await clientFrom(cmd).endpoints.revealSecret(id);
      if (wantsJson(cmd)) printJson(revealed);
      else printRecord(revealed as unknown as Record<string, unknown>);
    });

  endpoints
    .command('rotate-secret <id>')
    .description('Give an endpoint a new signing secret; deliveries carry both signatures for --grace seconds')
    .option('--secret <whsec>', 'the new secret (generated otherwise)')
    .option('--grace <seconds>', 'how long the previous secret keeps signing too (default 86400, at most 604800)')
    .action(async (id: string, opts: { secret?: string; grace?: string }, cmd: Command) => {
      const body = { ...(opts.grace !== undefined ? { gracePeriodSeconds: parseInteger(opts.grace, '--grace') } : {}), ...(opts.secret ? { secret: opts.secret } : {}) };
      show(cmd, await clientFrom(cmd).endpoints.rotateSecret(id, body));
    });

  endpoints
    .command('recover <id>')
    .description('Re-send every dead delivery of the endpoint since a time')
    .requiredOption('--since <time>', 'RFC 3339 time, e.g. 2026-11-28T00:00:00Z')
    .option('--limit <n>', 'at most this many (default 1000)')
    .action(async (id: string, opts: { since: string; limit?: string }, cmd: Command) => {
      const result = await clientFrom(cmd).endpoints.recover(id, { since: opts.since, ...(opts.limit !== undefined ? { limit: parseInteger(opts.limit, '--limit') } : {}) });
      if (wantsJson(cmd)) return printJson(result);
      process.stdout.write(`queued ${result.retried} again\n`);
    });

  endpoints
    .command('test <id>')
    .description('Send a signed test event now and show the attempt')
    .action(async (id: string, _opts: unknown, cmd: Command) => {
      const attempt = await clientFrom(cmd).endpoints.test(id);
      if (wantsJson(cmd)) return printJson(attempt);
      printRecord(attempt as unknown as Record<string, unknown>);
    });
}
