/**
 * Who may talk to the plugin over TCP: only processes on this host. The plugin runs as root and its API creates
 * devices and Neutron resources, so on a non-loopback address (kolla-ansible's `kuryr_uri` on the API address,
 * plain HTTP) another machine must not be able to drive it. A connection is accepted when its peer address is
 * loopback or one of this host's own interface addresses: a process on this host that connects to one of the
 * host's addresses has that address as its source, while a packet from elsewhere carries a foreign one.
 *
 * The check runs on the accepted socket, before any byte is read (no HTTP parsing, no TLS handshake). The
 * addresses are `os.networkInterfaces()`, read again when an unknown peer appears (at most once a second, so a
 * flood of foreign connections costs nothing) and whenever the last read is older than 10 s (a removed address
 * stops counting).
 */
import type { Server } from 'node:net';
import type { Socket } from 'node:net';
import os from 'node:os';
import ipaddr from 'ipaddr.js';

/** How long a read of the host's addresses is trusted. */
const MAX_AGE_MS = 10_000;
/** Unknown peers re-read the addresses at most this often. */
const MISS_REREAD_MS = 1_000;
/** Refused addresses remembered for "log once per address" (bounded: a scan must not grow memory). */
const MAX_REMEMBERED = 1024;

/** An address as compared: IPv4-mapped IPv6 (`::ffff:a.b.c.d`) as IPv4, without an IPv6 zone, lower case. */
export function canonicalAddress(address: string): string | undefined {
  const bare = address.replace(/%.*$/, '');
  if (!ipaddr.isValid(bare)) return undefined;
  return ipaddr.process(bare).toString();
}

/** This host's addresses, read from its interfaces with a short cache. */
export class LocalAddresses {
  readonly #read: () => NodeJS.Dict<os.NetworkInterfaceInfo[]>;
  readonly #now: () => number;
  #addresses = new Set<string>();
  #readAt = Number.NEGATIVE_INFINITY;

  constructor(options: { read?: () => NodeJS.Dict<os.NetworkInterfaceInfo[]>; now?: () => number } = {}) {
    this.#read = options.read ?? os.networkInterfaces;
    this.#now = options.now ?? Date.now;
  }

  /** True for loopback and for an address of one of this host's interfaces (now, or as of at most 10 s ago). */
  isLocal(address: string | undefined): boolean {
    if (address === undefined) return false;
    const canonical = canonicalAddress(address);
    if (canonical === undefined) return false;
    if (ipaddr.parse(canonical).range() === 'loopback') return true;
    const age = this.#now() - this.#readAt;
    if (age > MAX_AGE_MS) this.#refresh();
    else if (!this.#addresses.has(canonical) && age > MISS_REREAD_MS) this.#refresh();
    return this.#addresses.has(canonical);
  }

  #refresh(): void {
    const next = new Set<string>();
    for (const list of Object.values(this.#read())) {
      for (const info of list ?? []) {
        const canonical = canonicalAddress(info.address);
        if (canonical !== undefined) next.add(canonical);
      }
    }
    this.#addresses = next;
    this.#readAt = this.#now();
  }
}

export interface PeerGuardOptions {
  /** Told once per refused address (until 1024 different ones were seen). */
  onRefused?: (address: string, first: boolean) => void;
  local?: LocalAddresses;
}

/**
 * Closes every connection to `server` whose peer is not this host, as soon as it is accepted: before the HTTP
 * parser (or the TLS handshake) sees a byte. Returns the guard's address cache.
 */
export function acceptOnlyLocalPeers(server: Server, options: PeerGuardOptions = {}): LocalAddresses {
  const local = options.local ?? new LocalAddresses();
  const refused = new Set<string>();
  // Registered first: it runs before node:http's (or node:tls's) own connection listener.
  server.prependListener('connection', (socket: Socket) => {
    if (local.isLocal(socket.remoteAddress)) return;
    const address = socket.remoteAddress ?? 'unknown';
    const first = !refused.has(address);
    if (first && refused.size < MAX_REMEMBERED) refused.add(address);
    socket.destroy();
    options.onRefused?.(address, first);
  });
  return local;
}
