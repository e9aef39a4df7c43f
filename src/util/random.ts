/**
 * Random bytes, UUIDs and integers from the kernel's generator (/dev/urandom, the source node:crypto's OpenSSL
 * seeds from), read synchronously. Not node:crypto: loading it initialises OpenSSL and its module tree, 2.3 MiB of
 * RSS in the plugin, which needs randomness only for resource IDs, MAC addresses and the request-ID prefix.
 * Where /dev/urandom cannot be read, node:crypto is the fallback.
 */

/** node:fs as CommonJS: an ESM import of node:fs builds its namespace, loading fs/promises and readline. */
const fs = process.getBuiltinModule('node:fs');

/** Bytes read ahead, so that a UUID is not one system call. */
const POOL_SIZE = 256;
let pool = Buffer.alloc(0);
let used = 0;
let urandom: number | null | undefined;

function fill(target: Buffer): void {
  if (urandom === undefined) {
    try {
      urandom = fs.openSync('/dev/urandom', 'r');
    } catch {
      urandom = null;
    }
  }
  if (urandom === null) {
    process.getBuiltinModule('node:crypto').randomFillSync(target);
    return;
  }
  let done = 0;
  while (done < target.length) done += fs.readSync(urandom, target, done, target.length - done, null);
}

/** `n` random bytes (a new buffer). */
export function randomBytes(n: number): Buffer {
  const out = Buffer.alloc(n);
  if (n > POOL_SIZE) {
    fill(out);
    return out;
  }
  if (used + n > pool.length) {
    pool = Buffer.alloc(POOL_SIZE);
    fill(pool);
    used = 0;
  }
  pool.copy(out, 0, used, used + n);
  pool.fill(0, used, used + n); // handed out once only
  used += n;
  return out;
}

/** A random (version 4, RFC 9562) UUID in its lowercase text form, as crypto.randomUUID. */
export function randomUUID(): string {
  const b = randomBytes(16);
  b[6] = (b[6]! & 0x0f) | 0x40;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** A uniformly random integer in [0, max), as crypto.randomInt(max); max at most 2^48 (crypto's limit). */
export function randomInt(max: number): number {
  if (!Number.isSafeInteger(max) || max < 1 || max > 2 ** 48) {
    throw new RangeError(`randomInt: max must be an integer in [1, 2^48], got ${max}`);
  }
  // Rejection sampling over 48-bit values: no modulo bias.
  const range = 2 ** 48;
  const limit = range - (range % max);
  for (;;) {
    const v = randomBytes(6).readUIntBE(0, 6);
    if (v < limit) return v % max;
  }
}
