/**
 * Helpers for binding tests that run against the real kernel (as root): unique names, address ranges that
 * are free on this host, a ping command, and cleanup that only ever touches what the test created.
 */
import { execFile } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import { IpCommand, isNoSuchDevice } from '../../src/binding/ip-command.ts';
import type { Port } from '../../src/neutron/types.ts';
import { cidrsOverlap, parseCidr } from '../../src/util/ip.ts';

const run = promisify(execFile);

export const ip = new IpCommand();

/** Why kernel tests cannot run here, or false when they can (root and a working `ip`). */
export async function kernelSkipReason(): Promise<string | false> {
  if (process.getuid?.() !== 0) return 'needs root (creates veth pairs, bridges and network namespaces)';
  try {
    await run('ip', ['-json', 'link', 'show', 'dev', 'lo']);
  } catch (err) {
    return `iproute2 \`ip\` is not usable here: ${err}`;
  }
  return false;
}

/** A Neutron-like ID whose first 11 characters are unique to this run (UUID v4). */
export function randomId(): string {
  return randomUUID();
}

/** A MAC address with the locally administered bit set, in upper case (to check lower-casing). */
export function randomMac(): string {
  const bytes = randomBytes(6);
  bytes[0] = ((bytes[0] ?? 0) & 0xfc) | 0x02;
  return [...bytes]
    .map((b) => b.toString(16).padStart(2, '0'))
    .join(':')
    .toUpperCase();
}

/** A minimal port for the binder. */
export function makePort(overrides: Partial<Port> = {}): Port {
  return {
    id: randomId(),
    name: '',
    description: '',
    network_id: randomId(),
    admin_state_up: true,
    mac_address: randomMac(),
    fixed_ips: [],
    device_id: '',
    device_owner: 'kuryr:container',
    status: 'DOWN',
    security_groups: [],
    allowed_address_pairs: [],
    port_security_enabled: false,
    tags: [],
    project_id: 'p',
    tenant_id: 'p',
    'binding:host_id': 'test',
    'binding:vif_type': 'bridge',
    'binding:vif_details': {},
    'binding:vnic_type': 'normal',
    'binding:profile': {},
    created_at: '',
    updated_at: '',
    revision_number: 1,
    ...overrides,
  };
}

function records(value: unknown): Record<string, unknown>[] {
  if (!Array.isArray(value)) return [];
  return value.filter((v): v is Record<string, unknown> => typeof v === 'object' && v !== null);
}

/** Every CIDR the host already uses (addresses and routes, both families, all tables). */
async function hostCidrs(): Promise<string[]> {
  const cidrs: string[] = [];
  const addrs = await ip.runJson(['addr', 'show']);
  for (const link of records(addrs)) {
    for (const a of records(link.addr_info)) {
      if (typeof a.local === 'string' && typeof a.prefixlen === 'number') cidrs.push(`${a.local}/${a.prefixlen}`);
    }
  }
  for (const family of ['-4', '-6']) {
    const routes = await ip.runJson([family, 'route', 'show', 'table', 'all']);
    for (const r of records(routes)) {
      const dst = r.dst;
      if (typeof dst !== 'string' || dst === 'default') continue;
      const withLen = dst.includes('/') ? dst : `${dst}/${dst.includes(':') ? 128 : 32}`;
      try {
        parseCidr(withLen);
        cidrs.push(withLen);
      } catch {
        // multicast/broadcast keywords and the like: not an address range
      }
    }
  }
  return cidrs;
}

export interface TestSubnets {
  /** e.g. `10.231.17` (the /24 is `${v4}.0/24`). */
  v4: string;
  /** e.g. `fd00:1a2b:3c4d:` (the /64 is `${v6}:/64`). */
  v6: string;
}

/** A random 10.2xx.y.0/24 and fd00:xxxx:yyyy::/64 that nothing on this host uses yet. */
export async function freeSubnets(): Promise<TestSubnets> {
  const used = (await hostCidrs()).map((c) => parseCidr(c));
  for (let attempt = 0; attempt < 50; attempt++) {
    const [a = 0, b = 0, c = 0, d = 0, e = 0] = randomBytes(5);
    const v4 = `10.${200 + (a % 55)}.${b}`;
    const v6 = `fd00:${((c << 8) | d || 1).toString(16)}:${e.toString(16)}:`;
    const mine = [parseCidr(`${v4}.0/24`), parseCidr(`${v6}:/64`)];
    if (!mine.some((m) => used.some((u) => cidrsOverlap(m, u)))) return { v4, v6 };
  }
  throw new Error('no free test subnet found in 50 tries');
}

/** Delete each named link this test created; missing ones are fine (they may be gone already). */
export async function deleteLinks(names: Iterable<string>): Promise<void> {
  for (const name of names) {
    try {
      await ip.run(['link', 'del', 'dev', name]);
    } catch (err) {
      if (!isNoSuchDevice(err)) throw err;
    }
  }
}

/** Names (of those given) that still exist as links in the host namespace. */
export async function existingLinks(names: Iterable<string>): Promise<string[]> {
  const wanted = new Set(names);
  const links = await ip.runJson(['link', 'show']);
  const out: string[] = [];
  for (const l of records(links)) {
    if (typeof l.ifname === 'string' && wanted.has(l.ifname)) out.push(l.ifname);
  }
  return out;
}

/** `['ping']`, or `['busybox', 'ping']` where only busybox has one; undefined when neither exists. */
export async function findPing(): Promise<string[] | undefined> {
  for (const candidate of [['ping'], ['busybox', 'ping']]) {
    const [file = '', ...args] = candidate;
    try {
      await run(file, [...args, '-c', '1', '-W', '1', '127.0.0.1']);
      return candidate;
    } catch {
      // try the next one
    }
  }
  return undefined;
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** A short random suffix for netns names. */
export function shortSuffix(): string {
  return randomBytes(3).toString('hex');
}
