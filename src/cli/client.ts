import { join } from 'node:path';
import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import { PortcullisClient } from '../../sdk/client.ts';
import { ADMIN_KEY_FILE, readIfExists } from '../server/files.ts';

export const DEFAULT_URL = 'http://127.0.0.1:8080';

interface GlobalOptions {
  url?: string;
  apiKey?: string;
  json?: boolean;
}

/** The options of the whole program, wherever the command sits. */
function globals(cmd: Command): GlobalOptions {
  return cmd.optsWithGlobals<GlobalOptions>();
}

export function wantsJson(cmd: Command): boolean {
  return Boolean(globals(cmd).json);
}

/**
 * The API key: --api-key, else PORTCULLIS_API_KEY, else the admin key that
 * `init` wrote to <data dir>/admin.key on this machine.
 */
function apiKey(options: GlobalOptions): string | undefined {
  if (options.apiKey) return options.apiKey;
  if (process.env.PORTCULLIS_API_KEY) return process.env.PORTCULLIS_API_KEY;
  return readIfExists(join(process.env.PORTCULLIS_DATA_DIR ?? './data', ADMIN_KEY_FILE))?.trim() || undefined;
}

export function clientFrom(cmd: Command): PortcullisClient {
  const options = globals(cmd);
  const key = apiKey(options);
  return new PortcullisClient({ baseUrl: options.url ?? process.env.PORTCULLIS_URL ?? DEFAULT_URL, ...(key ? { apiKey: key } : {}) });
}

export function parseInteger(value: string, flag: string): number {
  if (!/^\d+$/.test(value)) throw new InvalidArgumentError(`${flag} must be a whole number`);
  return Number(value);
}

export function parseJsonObject(value: string, flag: string): Record<string, unknown> {
  try {
    const parsed: unknown = JSON.parse(value);
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) return parsed as Record<string, unknown>;
  } catch {
    // fall through
  }
  throw new InvalidArgumentError(`${flag} must be a JSON object`);
}
