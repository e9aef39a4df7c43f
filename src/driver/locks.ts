/**
 * Keyed mutual exclusion inside one process: operations on the same key run one after another, different keys
 * run in parallel. Used to serialise only what must be (one Docker network, one pool CIDR, one endpoint).
 */
export class KeyedLock {
  private readonly tails = new Map<string, Promise<void>>();

  /** Runs `fn` once every earlier holder of `key` has finished. */
  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const current = new Promise<void>((resolve) => {
      release = resolve;
    });
    const tail = previous.then(() => current);
    this.tails.set(key, tail);
    try {
      await previous;
      return await fn();
    } finally {
      release();
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }

  /** Number of keys currently held or waited for (for tests and metrics). */
  get size(): number {
    return this.tails.size;
  }
}

/**
 * Lock keys shared by the create and release paths (one place, so that both always take the same key):
 * the pools named `<prefix>-<cidr>`, and an address on a Neutron network.
 */
export const lockKeys = {
  poolName: (name: string) => `pool-name:${name}`,
  address: (networkId: string, ip: string) => `address:${networkId}/${ip}`,
  endpoint: (endpointId: string) => `endpoint:${endpointId}`,
} as const;
