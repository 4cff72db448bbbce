import ipaddr from 'ipaddr.js';

/**
 * The identity a client address is rate-limited under: an IPv4 address as is
 * (also when it arrives IPv4-mapped, `::ffff:192.0.2.1`), an IPv6 address by its
 * prefix — one host usually holds a whole /64, so limiting single IPv6
 * addresses would limit nothing.
 */
export function clientBucket(address: string, ipv6Prefix: number): string {
  let parsed: ipaddr.IPv4 | ipaddr.IPv6;
  try {
    parsed = ipaddr.process(address);
  } catch {
    return address;
  }
  if (parsed.kind() === 'ipv4') return parsed.toString();
  const bytes = parsed.toByteArray();
  for (let bit = ipv6Prefix; bit < 128; bit++) bytes[bit >> 3]! &= ~(0x80 >> (bit & 7));
  return `${ipaddr.fromByteArray(bytes).toString()}/${ipv6Prefix}`;
}

const GLOBAL_UNICAST_V6 = ipaddr.parseCIDR('2000::/3');

/** Why an address is refused: ipaddr.js's name for its range (`loopback`, `private`, `linkLocal`, …). */
export type AddressVerdict = { allowed: true } | { allowed: false; range: string };

/**
 * The SSRF guard's rule: only public unicast addresses, unless an operator
 * allow-listed the address's range. Everything else is refused — loopback,
 * private, link-local (cloud metadata at 169.254.169.254), CGNAT, multicast,
 * unspecified, reserved and documentation ranges, unique-local IPv6 — and so
 * are IPv6 forms that embed an IPv4 address (NAT64, 6to4, Teredo, IPv4-compatible),
 * judged as the IPv4 address where it can be read (IPv4-mapped) and refused
 * otherwise, and any IPv6 address outside global unicast (2000::/3).
 */
export function createAddressGuard(allow: readonly string[]): (address: string) => AddressVerdict {
  const allowed = allow.map((entry): [ipaddr.IPv4 | ipaddr.IPv6, number] => {
    if (entry.includes('/')) return ipaddr.parseCIDR(entry);
    const ip = ipaddr.process(entry);
    return [ip, ip.kind() === 'ipv4' ? 32 : 128];
  });
  return (address) => {
    let ip: ipaddr.IPv4 | ipaddr.IPv6;
    try {
      ip = ipaddr.process(address);
    } catch {
      return { allowed: false, range: 'invalid' };
    }
    if (allowed.some(([net, bits]) => net.kind() === ip.kind() && ip.match(net, bits))) return { allowed: true };
    const range = ip.range();
    if (range !== 'unicast') return { allowed: false, range };
    // Public IPv6 is global unicast (2000::/3); ipaddr.js calls the rest of the space unicast too,
    // such as the IPv4-compatible ::127.0.0.1, which some hosts route to the IPv4 address.
    if (ip.kind() === 'ipv6' && !ip.match(GLOBAL_UNICAST_V6)) return { allowed: false, range: 'notGlobalUnicast' };
    return { allowed: true };
  };
}

/** The entries of a list of addresses and CIDRs that are neither. */
export function invalidCidrs(entries: readonly string[]): string[] {
  return entries.filter((entry) => {
    try {
      if (entry.includes('/')) ipaddr.parseCIDR(entry);
      else ipaddr.parse(entry);
      return false;
    } catch {
      return true;
    }
  });
}
