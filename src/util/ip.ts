/**
 * IPv4/IPv6 address and CIDR arithmetic on top of ipaddr.js (parsing) with BigInt (math).
 * All functions are pure; invalid input throws `InvalidAddressError`.
 */
import ipaddr from 'ipaddr.js';

export type IpVersion = 4 | 6;

export class InvalidAddressError extends Error {
  override readonly name = 'InvalidAddressError';
}

/** A parsed CIDR: normalised network address, prefix length and IP version. */
export interface Cidr {
  version: IpVersion;
  /** The network address (host bits cleared) as a BigInt. */
  network: bigint;
  prefixLength: number;
}

const BITS: Record<IpVersion, number> = { 4: 32, 6: 128 };

/** True for a plain IPv4 or IPv6 address in canonical-enough text (no prefix, no zone). */
export function isIp(text: string): boolean {
  return ipaddr.IPv4.isValidFourPartDecimal(text) || (ipaddr.IPv6.isValid(text) && !text.includes('%'));
}

/** IP version of a plain address; throws when it is not one. */
export function ipVersion(text: string): IpVersion {
  if (ipaddr.IPv4.isValidFourPartDecimal(text)) return 4;
  if (ipaddr.IPv6.isValid(text) && !text.includes('%')) return 6;
  throw new InvalidAddressError(`invalid IP address: ${JSON.stringify(text)}`);
}

/** Address text → BigInt. */
export function ipToBigInt(text: string): bigint {
  let n = parsedIps.get(text);
  if (n !== undefined) return n;
  ipVersion(text); // validates
  const bytes = ipaddr.parse(text).toByteArray();
  n = 0n;
  for (const b of bytes) n = (n << 8n) | BigInt(b);
  remember(parsedIps, text, n);
  return n;
}

/**
 * Results of the parsing functions for texts seen lately: the same few addresses and CIDRs are parsed many times per
 * request (cache filters, the store, the driver), and parsing through ipaddr.js costs 10 µs an address without a
 * JIT (bin/kuryr runs node --jitless). Bounded: emptied when full. Only valid input is kept (invalid input throws).
 */
const MEMO_LIMIT = 2048;
const parsedIps = new Map<string, bigint>();
const normalizedIps = new Map<string, string>();
const parsedCidrs = new Map<string, Readonly<Cidr>>();

function remember<V>(memo: Map<string, V>, key: string, value: V): void {
  if (memo.size >= MEMO_LIMIT) memo.clear();
  memo.set(key, value);
}

/** Entries of the parse memos (for tests). */
export function ipMemoSize(): number {
  return parsedIps.size + normalizedIps.size + parsedCidrs.size;
}

/** BigInt → canonical address text (IPv6 compressed, lower case). */
export function bigIntToIp(n: bigint, version: IpVersion): string {
  const byteCount = version === 4 ? 4 : 16;
  const bytes: number[] = new Array(byteCount);
  let v = n;
  for (let i = byteCount - 1; i >= 0; i--) {
    bytes[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return ipaddr.fromByteArray(bytes).toString();
}

/** Canonical text of an address (`::0001` → `::1`). */
export function normalizeIp(text: string): string {
  let normal = normalizedIps.get(text);
  if (normal === undefined) {
    normal = bigIntToIp(ipToBigInt(text), ipVersion(text));
    remember(normalizedIps, text, normal);
  }
  return normal;
}

/** True for a CIDR `addr/len` of either family. Host bits may be set (`10.0.0.1/24` is valid). */
export function isCidr(text: string): boolean {
  try {
    parseCidr(text);
    return true;
  } catch {
    return false;
  }
}

/** Parse `addr/len`; host bits are cleared (`10.0.0.7/24` → network 10.0.0.0). */
export function parseCidr(text: string): Cidr {
  let cidr = parsedCidrs.get(text);
  if (cidr === undefined) {
    // Shared by every caller: frozen.
    cidr = Object.freeze(parseCidrText(text));
    remember(parsedCidrs, text, cidr);
  }
  return cidr;
}

function parseCidrText(text: string): Cidr {
  const slash = text.indexOf('/');
  if (slash < 0) throw new InvalidAddressError(`invalid CIDR (no prefix length): ${JSON.stringify(text)}`);
  const addr = text.slice(0, slash);
  const lenText = text.slice(slash + 1);
  if (!/^\d{1,3}$/.test(lenText)) throw new InvalidAddressError(`invalid CIDR prefix length: ${JSON.stringify(text)}`);
  let version: IpVersion;
  try {
    version = ipVersion(addr);
  } catch {
    throw new InvalidAddressError(`invalid CIDR address: ${JSON.stringify(text)}`);
  }
  const prefixLength = Number(lenText);
  if (prefixLength > BITS[version])
    throw new InvalidAddressError(`invalid CIDR prefix length: ${JSON.stringify(text)}`);
  return { version, network: ipToBigInt(addr) & netmask(version, prefixLength), prefixLength };
}

/** Address part and prefix length of `addr/len` without clearing host bits (for `10.0.0.5/24`). */
export function splitAddressWithPrefix(text: string): { address: string; prefixLength: number; version: IpVersion } {
  const cidr = parseCidr(text);
  const address = normalizeIp(text.slice(0, text.indexOf('/')));
  return { address, prefixLength: cidr.prefixLength, version: cidr.version };
}

/** Canonical CIDR text (`10.0.0.7/24` → `10.0.0.0/24`, IPv6 compressed). */
export function formatCidr(cidr: Cidr): string {
  return `${bigIntToIp(cidr.network, cidr.version)}/${cidr.prefixLength}`;
}

/** Canonical text of a CIDR string. */
export function normalizeCidr(text: string): string {
  return formatCidr(parseCidr(text));
}

function netmask(version: IpVersion, prefixLength: number): bigint {
  const bits = BITS[version];
  const all = (1n << BigInt(bits)) - 1n;
  return (all << BigInt(bits - prefixLength)) & all;
}

/** Number of addresses in the CIDR. */
export function cidrSize(cidr: Cidr): bigint {
  return 1n << BigInt(BITS[cidr.version] - cidr.prefixLength);
}

/** Last address of the CIDR (broadcast for IPv4). */
export function lastAddress(cidr: Cidr): bigint {
  return cidr.network + cidrSize(cidr) - 1n;
}

/** True when the plain address lies inside the CIDR (and is of the same family). */
export function cidrContainsIp(cidr: Cidr, ip: string): boolean {
  if (ipVersion(ip) !== cidr.version) return false;
  const n = ipToBigInt(ip);
  return n >= cidr.network && n <= lastAddress(cidr);
}

/** True when `inner` lies entirely inside `outer`. */
export function cidrContains(outer: Cidr, inner: Cidr): boolean {
  return (
    outer.version === inner.version &&
    inner.prefixLength >= outer.prefixLength &&
    inner.network >= outer.network &&
    lastAddress(inner) <= lastAddress(outer)
  );
}

/** True when the two CIDRs share at least one address. */
export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  return a.version === b.version && a.network <= lastAddress(b) && b.network <= lastAddress(a);
}

/**
 * Neutron's default gateway: the first host address (`10.0.0.1` for `10.0.0.0/24`, `fd00::1` for `fd00::/64`).
 * Null for networks too small to have one (/32, /31, /128, /127).
 */
export function firstHost(cidr: Cidr): string | null {
  if (BITS[cidr.version] - cidr.prefixLength < 2) return null;
  return bigIntToIp(cidr.network + 1n, cidr.version);
}

/**
 * Neutron's default allocation pool for a subnet: the CIDR minus the network address, minus the IPv4 broadcast
 * address and minus the gateway (which splits the range when it lies inside it).
 */
export function defaultAllocationPools(cidr: Cidr, gatewayIp: string | null): { start: string; end: string }[] {
  const first = cidr.network + 1n;
  const last = cidr.version === 4 ? lastAddress(cidr) - 1n : lastAddress(cidr);
  if (last < first) return [];
  const ranges: [bigint, bigint][] = [];
  const gw = gatewayIp !== null && cidrContainsIp(cidr, gatewayIp) ? ipToBigInt(gatewayIp) : null;
  if (gw === null || gw < first || gw > last) ranges.push([first, last]);
  else {
    if (gw > first) ranges.push([first, gw - 1n]);
    if (gw < last) ranges.push([gw + 1n, last]);
  }
  return ranges.map(([s, e]) => ({ start: bigIntToIp(s, cidr.version), end: bigIntToIp(e, cidr.version) }));
}

/**
 * The first block of `prefixLength` inside `within` that overlaps none of `used`, or null when all are taken.
 * Skips over used blocks instead of stepping one block at a time, so large pools stay fast.
 */
export function firstFreeBlock(within: Cidr, prefixLength: number, used: readonly Cidr[]): Cidr | null {
  if (prefixLength < within.prefixLength || prefixLength > BITS[within.version]) return null;
  const step = 1n << BigInt(BITS[within.version] - prefixLength);
  const end = lastAddress(within);
  const sorted = used.filter((u) => u.version === within.version).sort((a, b) => (a.network < b.network ? -1 : 1));
  let candidate = within.network;
  while (candidate + step - 1n <= end) {
    const block: Cidr = { version: within.version, network: candidate, prefixLength };
    const clash = sorted.find((u) => cidrsOverlap(u, block));
    if (!clash) return block;
    // Jump past the clashing block, aligned up to the next multiple of `step`.
    const after = lastAddress(clash) + 1n;
    const aligned = ((after - within.network + step - 1n) / step) * step + within.network;
    candidate = aligned > candidate ? aligned : candidate + step;
  }
  return null;
}

/** True for a MAC address `aa:bb:cc:dd:ee:ff` (either case). */
export function isMac(text: string): boolean {
  return /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/.test(text);
}

/** True for `localhost`, an address in 127.0.0.0/8, `::1` or `::ffff:127.x.y.z`. */
export function isLoopbackHost(host: string): boolean {
  if (host.toLowerCase() === 'localhost') return true;
  if (!ipaddr.IPv4.isValidFourPartDecimal(host) && !ipaddr.IPv6.isValid(host)) return false;
  return ipaddr.process(host).range() === 'loopback';
}
