import { readFileSync } from 'node:fs';
import { Ajv } from 'ajv';
import { parse as parseYaml } from 'yaml';
import { invalidCidrs } from '../core/addresses.ts';
import { ConfigSchema, SECRET_SETTINGS, SETTINGS } from './schema.ts';
import type { Config, RateLimitsConfig, Setting } from './schema.ts';

export const ENV_PREFIX = 'PORTCULLIS_';
const TRUST_PROXY_NAMES = new Set(['loopback', 'linklocal', 'uniquelocal']);

/** `dataDir` → `PORTCULLIS_DATA_DIR`. */
export function envName(setting: Setting): string {
  return ENV_PREFIX + setting.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase();
}

export class ConfigError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

export interface LoadOptions {
  env?: NodeJS.ProcessEnv;
  /** Path of a YAML or JSON file; else `PORTCULLIS_CONFIG`. */
  file?: string;
  /** Values from command-line flags, applied last. */
  overrides?: Partial<Record<Setting, unknown>>;
}

const ajv = new Ajv({ allErrors: true, useDefaults: true, coerceTypes: false, strict: false, verbose: true });
const validate = ajv.compile(ConfigSchema);

// Environment values are strings; convert by the setting's schema type so the
// schema check below still catches a malformed number as an error.
function fromEnv(setting: Setting, raw: string): unknown {
  const schema = ConfigSchema.properties[setting] as { type?: string; items?: { type?: string } };
  const number = (s: string): number | string => (/^-?\d+$/.test(s.trim()) ? Number(s.trim()) : s);
  if (schema.type === 'integer') return number(raw);
  if (schema.type === 'boolean') return raw === 'true' ? true : raw === 'false' ? false : raw;
  if (schema.type === 'object') {
    try {
      return JSON.parse(raw) as unknown;
    } catch {
      return raw; // the schema check reports it as "must be object"
    }
  }
  if (schema.type === 'array') {
    const items = raw.split(',').map((s) => s.trim()).filter((s) => s !== '');
    return schema.items?.type === 'integer' ? items.map(number) : items;
  }
  return raw;
}

function readEnv(env: NodeJS.ProcessEnv, problems: string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const setting of SETTINGS) {
    const name = envName(setting);
    const fileName = `${name}_FILE`;
    if (env[fileName] !== undefined) {
      try {
        out[setting] = fromEnv(setting, readFileSync(env[fileName]!, 'utf8').replace(/\r?\n$/, ''));
      } catch (err) {
        problems.push(`${fileName}: cannot read file (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
      }
    } else if (env[name] !== undefined && env[name] !== '') {
      out[setting] = fromEnv(setting, env[name]!);
    }
  }
  return out;
}

function readFile(path: string, problems: string[]): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    problems.push(`config file ${path}: cannot read (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    return {};
  }
  try {
    const value: unknown = parseYaml(text);
    if (value === null || value === undefined) return {};
    if (typeof value !== 'object' || Array.isArray(value)) {
      problems.push(`config file ${path}: must be a mapping of settings`);
      return {};
    }
    return value as Record<string, unknown>;
  } catch {
    problems.push(`config file ${path}: not valid YAML or JSON`);
    return {};
  }
}

/**
 * File, then environment, then flags; validated all at once. Throws ConfigError
 * listing every problem. Messages name settings, never their values.
 */
export function loadConfig(options: LoadOptions = {}): Config {
  const env = options.env ?? process.env;
  const problems: string[] = [];
  const file = options.file ?? env.PORTCULLIS_CONFIG;
  const merged: Record<string, unknown> = {
    ...(file ? readFile(file, problems) : {}),
    ...readEnv(env, problems),
  };
  for (const [k, v] of Object.entries(options.overrides ?? {})) if (v !== undefined) merged[k] = v;

  if (!validate(merged)) {
    for (const e of validate.errors ?? []) {
      // A choice of literals fails once per literal; its anyOf error says it once, with the choices.
      if (e.keyword === 'const') continue;
      const setting = e.instancePath.split('/')[1];
      const choices = e.keyword === 'anyOf' ? (e.schema as { const?: unknown }[]).map((c) => c.const) : [];
      const message = choices.length > 0 ? `must be one of ${choices.join(', ')}` : (e.message ?? 'invalid');
      if (e.keyword === 'additionalProperties') {
        problems.push(`${(e.params as { additionalProperty: string }).additionalProperty}: unknown setting`);
      } else if (setting && SETTINGS.includes(setting as Setting)) {
        problems.push(`${setting} (${envName(setting as Setting)}): ${message}`);
      } else {
        problems.push(`${e.instancePath || 'config'}: ${message}`);
      }
    }
  }
  const config = merged as Config;
  if (Boolean(config.tlsCert) !== Boolean(config.tlsKey)) problems.push('tlsCert and tlsKey (PORTCULLIS_TLS_CERT, PORTCULLIS_TLS_KEY): set both or neither');
  if (config.httpRedirectListen && !config.tlsCert) problems.push('httpRedirectListen (PORTCULLIS_HTTP_REDIRECT_LISTEN): needs tlsCert and tlsKey');
  for (const setting of ['ssrfAllow', 'trustProxy'] as const) {
    // trustProxy also takes proxy-addr's names for whole ranges.
    const entries = (Array.isArray(config[setting]) ? config[setting] : []).filter((e) => !(setting === 'trustProxy' && TRUST_PROXY_NAMES.has(e)));
    const bad = invalidCidrs(entries);
    if (bad.length > 0) problems.push(`${setting} (${envName(setting)}): not an address or CIDR: ${bad.length} entr${bad.length === 1 ? 'y' : 'ies'}`);
  }
  if (config.rateLimits) problems.push(...rateLimitProblems(config.rateLimits));
  if (config.proxy) problems.push(...proxyProblems(config, env));
  if (problems.length > 0) throw new ConfigError([...new Set(problems)]);
  return config;
}

/** Every policy a rate-limit setting names must be defined. */
function rateLimitProblems(limits: RateLimitsConfig): string[] {
  const known = new Set(Object.keys(limits.policies ?? {}));
  const uses: [string, string | undefined][] = [
    ['rateLimits.perKey', limits.perKey],
    ['rateLimits.perIp', limits.perIp],
    ...Object.entries(limits.routes ?? {}).map(([route, name]): [string, string] => [`rateLimits.routes["${route}"]`, name]),
  ];
  return uses.filter(([, name]) => name !== undefined && !known.has(name)).map(([where, name]) => `${where}: no policy named ${name} in rateLimits.policies`);
}

/** The API's own paths cannot be proxied, two routes cannot share a prefix, and names must resolve. */
const RESERVED_PREFIXES = ['/v1/', '/in/', '/docs', '/openapi.json', '/healthz', '/readyz', '/metrics', '/dashboard'];

function proxyProblems(config: Config, env: NodeJS.ProcessEnv): string[] {
  const problems: string[] = [];
  const seen = new Set<string>();
  (config.proxy.routes ?? []).forEach((route, i) => {
    const where = `proxy.routes[${i}]`;
    if (RESERVED_PREFIXES.some((p) => route.prefix.startsWith(p) || p.startsWith(route.prefix))) problems.push(`${where}.prefix: overlaps Portcullis's own routes`);
    if (seen.has(route.prefix)) problems.push(`${where}.prefix: another route has the same prefix`);
    seen.add(route.prefix);
    if (route.rateLimit && !Object.hasOwn(config.rateLimits?.policies ?? {}, route.rateLimit)) problems.push(`${where}.rateLimit: no policy named ${route.rateLimit} in rateLimits.policies`);
    const credential = route.credential;
    if (!credential) return;
    if (credential.env === undefined) {
      if (credential.value === undefined) problems.push(`${where}.credential: give env (preferred) or value`);
      return;
    }
    const file = env[`${credential.env}_FILE`];
    try {
      credential.value = file !== undefined ? readFileSync(file, 'utf8').replace(/\r?\n$/, '') : env[credential.env];
    } catch (err) {
      problems.push(`${where}.credential: cannot read ${credential.env}_FILE (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
      return;
    }
    if (!credential.value) problems.push(`${where}.credential: neither ${credential.env} nor ${credential.env}_FILE is set`);
  });
  return problems;
}

function redactUrl(value: string): string {
  try {
    const url = new URL(value);
    if (url.password) url.password = '***';
    return url.toString();
  } catch {
    return '***';
  }
}

/** The effective configuration, safe to print: secrets replaced, URL passwords masked. */
export function redactConfig(config: Config): Record<string, unknown> {
  const out: Record<string, unknown> = { ...config };
  if (config.proxy?.routes.some((r) => r.credential)) {
    out.proxy = { routes: config.proxy.routes.map((r) => (r.credential ? { ...r, credential: { ...r.credential, value: '[redacted]' } } : r)) };
  }
  for (const name of SECRET_SETTINGS) {
    const value = out[name];
    if (typeof value !== 'string') continue;
    out[name] = name === 'secretKey' ? '[redacted]' : value.startsWith('sqlite:') ? value : redactUrl(value);
  }
  return out;
}
