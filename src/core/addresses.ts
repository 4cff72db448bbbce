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
