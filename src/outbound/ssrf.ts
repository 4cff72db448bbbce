import { lookup as dnsLookup } from 'node:dns';
import type { LookupAddress, LookupOptions } from 'node:dns';
import { isIP } from 'node:net';
import { createAddressGuard } from '../core/addresses.ts';

/** Resolves a host name to addresses; tests inject one (there is no DNS here). */
export type Resolver = (hostname: string) => Promise<LookupAddress[]>;

export const systemResolver: Resolver = (hostname) =>
  new Promise((resolve, reject) => dnsLookup(hostname, { all: true, verbatim: true }, (err, addresses) => (err ? reject(err) : resolve(addresses))));

/** A destination the SSRF guard refused. Its message names the host and range, never credentials. */
export class SsrfRefused extends Error {
  readonly host: string;
  readonly range: string;
  constructor(host: string, range: string) {
    super(`refused by the SSRF guard: ${host} is a ${range} address`);
    this.name = 'SsrfRefused';
    this.host = host;
    this.range = range;
  }
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

export interface SsrfGuard {
  /** Throws SsrfRefused unless every address the host resolves to is allowed (a literal is checked as is). */
  check(host: string): Promise<LookupAddress[]>;
  /**
   * A `lookup` for net.connect: resolves, checks, and hands back only checked
   * addresses, so the connection goes to the address that was checked — a DNS
   * answer that changes between check and use (rebinding) cannot slip through.
   */
  lookup(hostname: string, options: LookupOptions, callback: LookupCallback): void;
}

export function createSsrfGuard(allow: readonly string[], resolver: Resolver = systemResolver): SsrfGuard {
  const verdict = createAddressGuard(allow);
  /** Literal addresses already allowed: their verdict never changes (names are resolved every time). */
  const allowedLiterals = new Map<string, LookupAddress[]>();

  async function check(host: string): Promise<LookupAddress[]> {
    const known = allowedLiterals.get(host);
    if (known) return known;
    const bare = host.replace(/^\[|\]$/g, '');
    const family = isIP(bare);
    const addresses = family ? [{ address: bare, family }] : await resolver(bare);
    if (addresses.length === 0) throw Object.assign(new Error(`${bare} has no addresses`), { code: 'ENOTFOUND' });
    // Every address must pass: a name with one private address among public ones is refused.
    for (const { address } of addresses) {
      const v = verdict(address);
      if (!v.allowed) throw new SsrfRefused(bare, v.range);
    }
    if (family) {
      if (allowedLiterals.size >= 10_000) allowedLiterals.clear();
      allowedLiterals.set(host, addresses);
    }
    return addresses;
  }

  return {
    check,
    lookup(hostname, options, callback) {
      check(hostname).then(
        (addresses) => {
          const wanted = options.family === 4 || options.family === 6 ? addresses.filter((a) => a.family === options.family) : addresses;
          if (wanted.length === 0) return callback(Object.assign(new Error(`${hostname} has no IPv${options.family} address`), { code: 'ENOTFOUND' }), []);
          if (options.all) callback(null, wanted);
          else callback(null, wanted[0]!.address, wanted[0]!.family);
        },
        (err: NodeJS.ErrnoException) => callback(err, []),
      );
    },
  };
}
