/**
 * fast-check arbitraries for the plugin's requests: valid bases for every route (aimed at real resources, so
 * that a request slipping through validation would change something), invalid values for every validated
 * field (wrong JSON types, near-valid IDs/CIDRs/IPs/MACs/pool IDs, shell metacharacters, path tricks, control
 * characters, unicode, deep nesting), unknown-field noise, duplicate keys, and malformed bodies.
 *
 * Bodies are built as `J` values and serialised by `serialize`, which can also emit raw JSON text (deep nesting
 * that JSON.stringify could not produce) and objects with duplicate keys.
 */
import fc from 'fast-check';

// ---- JSON values with raw fragments and duplicate keys ----

/** Raw JSON text, emitted verbatim. */
export class RawJson {
  readonly text: string;
  constructor(text: string) {
    this.text = text;
  }
}

/** An object whose entries may repeat a key (JSON.parse keeps the last one). */
export class DupObject {
  readonly entries: readonly (readonly [string, J])[];
  constructor(entries: readonly (readonly [string, J])[]) {
    this.entries = entries;
  }
}

export type J = null | boolean | number | string | RawJson | DupObject | J[] | { [key: string]: J };
export type JObject = { [key: string]: J };
export type Path = readonly (string | number)[];

/** JSON text of `v` (Go's encoder style: no spaces). */
export function serialize(v: J): string {
  if (v instanceof RawJson) return v.text;
  if (v instanceof DupObject) return `{${v.entries.map(([k, x]) => `${JSON.stringify(k)}:${serialize(x)}`).join(',')}}`;
  if (Array.isArray(v)) return `[${v.map(serialize).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    return `{${Object.entries(v)
      .map(([k, x]) => `${JSON.stringify(k)}:${serialize(x)}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

function isPlain(v: J | undefined): v is JObject {
  return (
    typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof RawJson) && !(v instanceof DupObject)
  );
}

/** `obj` with `key` set (own data property, also for `__proto__`) or removed (`value` undefined). */
function withKey(obj: JObject, key: string, value: J | undefined): JObject {
  const entries: [string, J][] = Object.entries(obj).filter(([k]) => k !== key);
  if (value !== undefined) entries.push([key, value]);
  return Object.fromEntries(entries) as JObject;
}

/**
 * A copy of `root` with the value at `path` replaced (or removed when `value` is undefined); missing
 * intermediate objects are created. With `dup`, the parent object keeps the old value under the same key
 * *before* the new one (a duplicate key: the parser must take the last, invalid, value).
 */
export function setPath(root: J, path: Path, value: J | undefined, dup = false): J {
  if (path.length === 0) return value ?? null;
  const [head, ...rest] = path;
  if (typeof head === 'number') {
    const arr = Array.isArray(root) ? [...root] : [];
    if (rest.length === 0) {
      if (value === undefined) arr.splice(head, 1);
      else arr[head] = value;
    } else arr[head] = setPath(arr[head] ?? {}, rest, value, dup);
    return arr;
  }
  const obj: JObject = isPlain(root) ? root : {};
  if (rest.length > 0) return withKey(obj, head!, setPath(obj[head!] ?? {}, rest, value, dup));
  const old = obj[head!];
  if (dup && old !== undefined && value !== undefined) {
    return new DupObject([...Object.entries(obj).filter(([k]) => k !== head), [head!, old], [head!, value]]);
  }
  return withKey(obj, head!, value);
}

export function getPath(root: J, path: Path): J | undefined {
  let cur: J | undefined = root;
  for (const key of path) {
    if (typeof key === 'number') cur = Array.isArray(cur) ? cur[key] : undefined;
    else cur = isPlain(cur) ? cur[key] : undefined;
  }
  return cur;
}

// ---- the world the bases aim at ----

/** Resources that exist before fuzzing starts (test/fuzz/world.ts creates them through the API). */
export interface World {
  /** Joined endpoint with an exposed-ports security group. */
  netA: string;
  poolA: string;
  poolAUuid: string;
  cidrA: string;
  gatewayA: string;
  epA: string;
  addrA: string;
  /** An address of network A held by an unbound port of ours. */
  spareAddr: string;
  /** Dual-stack network from the default pools, with one endpoint (not joined). */
  netB: string;
  epB: string;
  /** A pool RequestPool made but no network uses: ReleasePool would delete it. */
  poolC: string;
  /** Names of the subnet pools that exist (a generated "unknown" name must differ from them). */
  poolNames: readonly string[];
}

// ---- generators of pieces ----

const HEX = [...'0123456789abcdef'];
const ALNUM = [...'0123456789abcdefghijklmnopqrstuvwxyz'];
const chars = (alphabet: readonly string[], n: number) =>
  fc.string({ unit: fc.constantFrom(...alphabet), minLength: n, maxLength: n });

export const hexId = chars(HEX, 64);
export const swarmId = chars(ALNUM, 25);
export const dockerIdArb = fc.oneof({ weight: 4, arbitrary: hexId }, { weight: 1, arbitrary: swarmId });
export const uuidArb = fc.uuid({ version: 4 });
/** A locally administered unicast MAC that no world port uses (02:42:fe:…). */
export const freshMac = fc
  .tuple(fc.nat(255), fc.nat(255), fc.nat(255))
  .map((b) => `02:42:fe:${b.map((x) => x.toString(16).padStart(2, '0')).join(':')}`);

/** Pieces of hostile text: shell metacharacters, path tricks, control characters, odd unicode. */
export const HOSTILE_FRAGMENTS = [
  ';',
  '&&',
  '||',
  '|',
  '&',
  '`id`',
  '$(reboot)',
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a shell expansion, on purpose
  '${IFS}',
  '$HOME',
  '>',
  '<',
  '*',
  '?',
  '~',
  "'",
  '"',
  '\\',
  ' ',
  '\t',
  '\n',
  '\r\n',
  '\0',
  '\x1b[2J',
  '#',
  '!',
  '%00',
  '%2e%2e%2f',
  '../',
  '../../etc/passwd',
  '/etc/passwd',
  '/proc/self/environ',
  '/dev/null',
  '..',
  '//',
  '\\\\server\\share',
  'C:\\Windows',
  '\u202e',
  '\ufeff',
  '\u200b',
  '\u2028',
  '\u0085',
  'é',
  'İ',
  '\ud800',
  '１',
  '𝟘',
  '{{7*7}}',
  "' OR '1'='1",
  '-rf',
  '--help',
  '-o',
] as const;

/** Text that always carries at least one hostile fragment. */
export const hostileString: fc.Arbitrary<string> = fc
  .tuple(
    fc.string({ maxLength: 8 }),
    fc.constantFrom(...HOSTILE_FRAGMENTS),
    fc.array(fc.oneof(fc.constantFrom(...HOSTILE_FRAGMENTS), fc.string({ maxLength: 6, unit: 'binary' })), {
      maxLength: 4,
    }),
  )
  .map(([a, b, rest]) => a + b + rest.join(''));

/** A deeply nested array or object as raw JSON text (JSON.stringify could not write it). */
export const deepJson: fc.Arbitrary<RawJson> = fc
  .tuple(fc.oneof(fc.integer({ min: 20, max: 200 }), fc.constantFrom(1_000, 5_000, 20_000, 100_000)), fc.boolean())
  .map(([depth, arrays]) =>
    arrays
      ? new RawJson(`${'['.repeat(depth)}1${']'.repeat(depth)}`)
      : new RawJson(`${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`),
  );

const smallJson = fc.jsonValue({ maxDepth: 2 }) as fc.Arbitrary<J>;

/** Any JSON value that is not a string (and not null unless `withNull`). */
export function notString(withNull = true): fc.Arbitrary<J> {
  return fc.oneof(
    fc.integer(),
    fc.double({ noNaN: true, noDefaultInfinity: true }),
    fc.boolean(),
    ...(withNull ? [fc.constant(null)] : []),
    fc.array(smallJson, { maxLength: 3 }),
    fc.dictionary(fc.string({ maxLength: 6 }), smallJson, { maxKeys: 3 }) as fc.Arbitrary<J>,
    deepJson,
  );
}

/** Any JSON value that is not an object (and not null unless `withNull`). */
export function notObject(withNull = true): fc.Arbitrary<J> {
  return fc.oneof(
    fc.integer(),
    fc.boolean(),
    fc.string({ maxLength: 10 }),
    hostileString,
    ...(withNull ? [fc.constant(null)] : []),
    fc.array(smallJson, { maxLength: 3 }),
    deepJson.filter((r) => r.text.startsWith('[')),
  );
}

/** Any JSON value that is not an array (and not null unless `withNull`). */
export function notArray(withNull = true): fc.Arbitrary<J> {
  return fc.oneof(
    fc.integer(),
    fc.boolean(),
    fc.string({ maxLength: 10 }),
    hostileString,
    ...(withNull ? [fc.constant(null)] : []),
    fc.dictionary(fc.string({ maxLength: 6 }), smallJson, { maxKeys: 3 }) as fc.Arbitrary<J>,
    deepJson.filter((r) => r.text.startsWith('{')),
  );
}

/** A string longer than `max` characters. */
const tooLong = (max: number) => fc.integer({ min: max + 1, max: max + 200 }).map((n) => 'a'.repeat(n));

// ---- invalid values by kind ----

/** Near-valid and hostile Docker IDs (valid: 64 lowercase hex, or 25 lowercase alphanumerics). */
export const invalidDockerId: fc.Arbitrary<J> = fc.oneof(
  hexId.filter((id) => /[a-f]/.test(id)).map((id) => id.toUpperCase()),
  hexId.filter((id) => /[a-f]/.test(id)).map((id) => id.replace(/[a-f]/, (c) => c.toUpperCase())),
  chars(HEX, 63),
  chars(HEX, 65),
  chars(ALNUM, 24),
  chars(ALNUM, 26),
  swarmId.filter((id) => /[a-z]/.test(id)).map((id) => id.toUpperCase()),
  fc
    .tuple(hexId, fc.constantFrom('\n', '\0', ' ', ';', '/', '/../x', '$(id)', '`id`', '\r', '%0a'))
    .map(([id, s]) => id + s),
  fc.tuple(hexId, fc.constantFrom('\n', ' ', '-', '../', '０')).map(([id, s]) => s + id.slice(s.length)),
  hexId.map((id) => `${id.slice(0, 8)}-${id.slice(8, 12)}-${id.slice(12, 16)}-${id.slice(16, 20)}-${id.slice(20, 32)}`),
  hexId
    .map((id) => id.replace(/[0-9]/, (d) => String.fromCharCode(0xff10 + Number(d))))
    .filter((id) => /[０-９]/.test(id)),
  fc.constant(''),
  hostileString,
  tooLong(64),
  notString(),
);

const INVALID_CIDRS = [
  '10.0.0.0/33',
  '::ffff:1.2.3.4/129',
  'fd00::/129',
  '10.0.0.256/24',
  '256.0.0.0/8',
  '10.0.0.0/-1',
  '10.0.0.0/',
  '/24',
  '10.0.0.0',
  'fd00::',
  '10.0.0.0/24/24',
  '10.0.0.0 /24',
  ' 10.0.0.0/24',
  '10.0.0.0/24 ',
  '10.0.0.0/24\n',
  '10.0.0.0/24\0',
  '1.2.3/24',
  '1.2.3.4.5/24',
  '010.0.0.0/8',
  '10.0.0.00/24',
  '0x0a.0.0.0/8',
  '167772160/8',
  'fe80::1%eth0/64',
  'fe80::1%25eth0/64',
  'fd00:::/64',
  'fd00::g/64',
  '1::2::3/64',
  '10.0.0.0/2.4',
  '10.0.0.0/1e1',
  '10.0.0.0/+24',
  '10.0.0.0/0x18',
  '10.0.0.0/1000',
  '10.0.0.0\\24',
  '１０.0.0.0/8',
  '10.0.0.0/２４',
  '10.0.0.0/24;reboot',
  '10.0.0.0/24 && id',
  '$(reboot)/24',
  '`id`/24',
  '../../etc/passwd',
  '/etc/passwd',
  'localhost/24',
  'any',
  'default',
];

/** Strings that are not CIDRs (empty excluded: every CIDR field accepts ""). */
export const invalidCidrString: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(...INVALID_CIDRS),
  fc
    .tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255), fc.integer({ min: 33, max: 999 }))
    .map(([a, b, c, d, len]) => `${a}.${b}.${c}.${d}/${len}`),
  fc.ipV6().map((ip) => `${ip}/${129 + (ip.length % 800)}`),
  fc.ipV4().map((ip) => `${ip}/${ip.length % 33}${String.fromCharCode(0x20 + (ip.length % 16))}`),
  fc.tuple(fc.ipV4(), fc.constantFrom(...HOSTILE_FRAGMENTS)).map(([ip, h]) => `${ip}/24${h}`),
  fc.tuple(fc.ipV4(), fc.constantFrom(...HOSTILE_FRAGMENTS)).map(([ip, h]) => `${h}${ip}/24`),
  hostileString,
  tooLong(128),
);

/** A CIDR field: any non-CIDR string or a wrong JSON type (`null` included unless the field is nullable). */
export const invalidCidr = (nullable = false): fc.Arbitrary<J> =>
  fc.oneof({ weight: 3, arbitrary: invalidCidrString }, { weight: 1, arbitrary: notString(!nullable) });

const INVALID_IPS = [
  '10.0.0.256',
  '1.2.3',
  '1.2.3.4.5',
  '10.0.0.1/24',
  '::ffff:1.2.3.4/129',
  'fe80::1%eth0',
  '010.0.0.1',
  '10.0.0.01',
  '0x0a000001',
  '167772161',
  '::g',
  ':::',
  '1::2::3',
  ' 10.0.0.1',
  '10.0.0.1 ',
  '10.0.0.1\n',
  '10.0.0.1\0',
  '１０.0.0.1',
  'localhost',
  '10.0.0.1;reboot',
  '$(reboot)',
  '../../etc/passwd',
];

export const invalidIpString: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(...INVALID_IPS),
  fc.tuple(fc.ipV4(), fc.constantFrom(...HOSTILE_FRAGMENTS)).map(([ip, h]) => ip + h),
  fc.ipV4().map((ip) => `${ip}/${ip.length}`),
  fc.ipV6().map((ip) => `${ip}%eth0`),
  hostileString,
  tooLong(128),
);

export const invalidIp = (nullable = false): fc.Arbitrary<J> =>
  fc.oneof({ weight: 3, arbitrary: invalidIpString }, { weight: 1, arbitrary: notString(!nullable) });

const INVALID_MACS = [
  '02:42:ac:11:00',
  '02:42:ac:11:00:02:03',
  '02-42-ac-11-00-02',
  '0242.ac11.0002',
  '0242ac110002',
  'zz:zz:zz:zz:zz:zz',
  '02:42:ac:11:00:0g',
  '2:42:ac:11:0:2',
  '02:42:ac:11:00:02\n',
  ' 02:42:ac:11:00:02',
  '02:42:ac:11:00:02:',
  '02:42:ac:11:00:02;reboot',
  '$(reboot)',
  'Ag==',
  'AkKsEQAC',
];

export const invalidMacString: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(...INVALID_MACS),
  fc.tuple(freshMac, fc.constantFrom(...HOSTILE_FRAGMENTS)).map(([m, h]) => m + h),
  hostileString,
  tooLong(128),
);

/** MACs that are well-formed but cannot be a port's MAC (multicast, broadcast, zero). */
export const unusableMac = fc.constantFrom(
  '01:00:5e:00:00:01',
  'ff:ff:ff:ff:ff:ff',
  '00:00:00:00:00:00',
  '33:33:00:00:00:01',
);

export const invalidMac = (nullable = false): fc.Arbitrary<J> =>
  fc.oneof({ weight: 3, arbitrary: invalidMacString }, { weight: 1, arbitrary: notString(!nullable) });

/** SandboxKeys the schema must refuse: relative, `..` components, NUL or other control characters, too long. */
export const invalidSandboxKey: fc.Arbitrary<J> = fc.oneof(
  fc.constantFrom(
    '',
    'var/run/docker/netns/0123456789ab',
    './netns',
    '../../etc/passwd',
    '/var/run/docker/netns/../../../etc/shadow',
    '/var/run/../run/docker/netns/x',
    '/..',
    '/a/..',
    '/var/run/docker/netns/abc\0',
    '\0/etc',
    '/var/run/docker/netns/abc\n/etc/passwd',
    '/var/run/docker/netns/abc\r',
    '/var/run/docker/netns/\x1b[2Jabc',
    '~/netns',
    '$HOME/netns',
    '$(reboot)',
    '`reboot`',
  ),
  fc
    .tuple(fc.string({ maxLength: 10 }), fc.constantFrom('\0', '\n', '\r', '\t', '\x1b', '\x7f', '\x01', '\u0085'))
    .map(([s, c]) => `/var/run/docker/netns/${s}${c}${s}`),
  fc.string({ maxLength: 10 }).map((s) => `/var/run/${s}/../${s}`),
  fc.integer({ min: 4096, max: 5000 }).map((n) => `/${'a'.repeat(n)}`),
  notString(),
);

/** Absolute paths without `..` or control characters but with shell metacharacters: accepted, used for nothing. */
export const oddSandboxKey: fc.Arbitrary<string> = fc
  .array(fc.constantFrom(';', '$(reboot)', '`id`', '|', '&', ' ', "'", '"', '*', 'etc', 'passwd', 'é', '\u202e', '.'), {
    minLength: 1,
    maxLength: 6,
  })
  .map((parts) => `/var/run/docker/netns/${parts.join('')}`)
  .filter((p) => !p.split('/').includes('..'));

/** Pool IDs that were never issued: near-valid forms of a real pool's UUID, path tricks, forged ranges. */
export function invalidPoolId(poolUuid: string, cidr: string): fc.Arbitrary<J> {
  const [net = '', len = ''] = cidr.split('/');
  const host = net.replace(/\.0$/, '.1');
  return fc.oneof(
    fc.constantFrom(
      '',
      'nope',
      '-',
      ':',
      '@',
      '.',
      '../..',
      '../../etc/passwd',
      '....//....//',
      'a'.repeat(257),
      poolUuid.toUpperCase(),
      poolUuid.replaceAll('-', ''),
      `${poolUuid}@`,
      `${poolUuid}@@`,
      `${poolUuid}@${host}/${len}`,
      `${poolUuid}@${net}/33`,
      `${poolUuid}@${cidr}@`,
      `${poolUuid}@${cidr}@${cidr}@${cidr}`,
      `${poolUuid}/../${poolUuid}`,
      `${poolUuid}@${cidr}/../..`,
      `@${poolUuid}@${cidr}`,
      // An --ip-range that is not inside the network's CIDR (or of the other family): never issued by RequestPool.
      `${poolUuid}@${cidr}@10.99.0.0/25`,
      `${poolUuid}@${cidr}@0.0.0.0/0`,
      `${poolUuid}@${cidr}@fd00::/64`,
      `${poolUuid}@${cidr}@${net}/${Math.max(0, Number(len) - 1)}`,
    ),
    fc.constantFrom(...HOSTILE_FRAGMENTS).map((h) => poolUuid + h),
    fc.constantFrom(...HOSTILE_FRAGMENTS).map((h) => `${poolUuid}@${cidr}${h}`),
    invalidCidrString.map((c) => `${poolUuid}@${c}`),
    hostileString,
    notString(),
  );
}

/** A value for a `neutron.*.uuid` option that is not a UUID (empty and null mean "not given", so excluded). */
export const invalidUuidOption = (stringsOnly: boolean): fc.Arbitrary<J> =>
  fc.oneof(
    hostileString,
    fc.constantFrom('not-a-uuid', '1234', '0', 'default'),
    uuidArb.map((u) => `${u}x`),
    uuidArb.map((u) => u.replaceAll('-', '')),
    uuidArb.map((u) => `${u};reboot`),
    tooLong(255),
    ...(stringsOnly ? [] : [notString(false)]),
  );

/** A name option that names no pool/network/subnet (→ 404), is too long, or is not a string (→ 400). */
export function invalidNameOption(w: World, stringsOnly: boolean): fc.Arbitrary<J> {
  return fc.oneof(
    { weight: 3, arbitrary: hostileString.filter((s) => !w.poolNames.includes(s)) },
    { weight: 1, arbitrary: tooLong(255) },
    ...(stringsOnly ? [] : [{ weight: 1, arbitrary: notString(false) }]),
  );
}

/** An `exposedports` option that is not a list of {Proto: 1|6|17|132, Port: 0..65535}. */
export const invalidExposedPorts: fc.Arbitrary<J> = fc.oneof(
  notArray(false),
  fc
    .tuple(
      fc.array(fc.record({ Proto: fc.constantFrom(6, 17), Port: fc.integer({ min: 1, max: 65535 }) }), {
        maxLength: 3,
      }),
      fc.oneof(
        fc.record({
          Proto: fc.constantFrom(6, 17, 132, 1),
          Port: fc.oneof(fc.integer({ min: 65536 }), fc.integer({ max: -1 })),
        }),
        fc.record({ Proto: fc.integer().filter((p) => ![1, 6, 17, 132].includes(p)), Port: fc.constant(80) }),
        fc.record({ Proto: fc.constantFrom<J>('6', 'tcp', null, true, 6.5), Port: fc.constant(80) }),
        fc.record({ Proto: fc.constant(6), Port: fc.constantFrom<J>('80', 80.5, null, false, [80], 1e21) }),
        fc.record({ Proto: fc.constantFrom(6, 17, 132), Port: fc.constant(0) }),
        fc.record({ Proto: fc.constant(6) }),
        fc.constant<J>(null),
        fc.constant<J>('80/tcp'),
        fc.constant<J>([6, 80]),
        deepJson,
      ),
    )
    .map(([good, bad]) => [...good, bad as J]),
);

// ---- noise that never makes an invalid request valid ----

/** Field names of the protocol: noise never uses them. */
const KNOWN_KEYS = new Set([
  'NetworkID',
  'EndpointID',
  'Options',
  'IPv4Data',
  'IPv6Data',
  'Interface',
  'SandboxKey',
  'DiscoveryType',
  'DiscoveryData',
  'AddressSpace',
  'Pool',
  'SubPool',
  'V6',
  'PoolID',
  'Address',
  'AddressIPv6',
  'MacAddress',
  'Gateway',
  'AuxAddresses',
]);

/** An unknown key: prototype names, case variants of real fields, hostile text. */
export const unknownKey: fc.Arbitrary<string> = fc
  .oneof(
    fc.constantFrom(
      '__proto__',
      'constructor',
      'prototype',
      'toString',
      'hasOwnProperty',
      'Err',
      'networkid',
      'NETWORKID',
      'NetworkId',
      ' NetworkID',
      'NetworkID\u0000',
      'poolid',
      'sandboxkey',
      '',
    ),
    fc.string({ maxLength: 12 }),
    hostileString,
  )
  .filter((k) => !KNOWN_KEYS.has(k));

/** An unknown option key (not `neutron.*`, `com.docker.*` or `RequestAddressType`, which mean something). */
export const unknownOptionKey: fc.Arbitrary<string> = unknownKey.filter(
  (k) => !k.startsWith('neutron.') && !k.startsWith('com.docker.') && k !== 'RequestAddressType',
);

export const noiseValue: fc.Arbitrary<J> = fc.oneof(
  { weight: 3, arbitrary: smallJson },
  { weight: 3, arbitrary: hostileString },
  { weight: 1, arbitrary: deepJson },
);

/** Adds unknown top-level fields, and unknown option keys when the body has an Options object. */
export function addNoise(body: J, noise: readonly (readonly [boolean, string, J])[]): J {
  let out = body;
  for (const [inOptions, key, value] of noise) {
    if (out instanceof DupObject || !isPlain(out)) return out;
    if (inOptions) {
      if (isPlain(out.Options)) out = setPath(out, ['Options', key], value);
    } else out = setPath(out, [key], value);
  }
  return out;
}

export const noiseArb = fc.array(fc.tuple(fc.boolean(), unknownOptionKey, noiseValue), { maxLength: 3 });

// ---- every route: a valid base aimed at real resources, and its validated fields ----

/** One validated field: where it is and what does not pass there. */
export interface FieldSpec {
  path: Path;
  invalid: fc.Arbitrary<J>;
  /** Removing the field makes the request invalid too. */
  required?: boolean;
}

export interface RouteSpec {
  /** e.g. `NetworkDriver.CreateNetwork` */
  method: string;
  /** A request that would succeed, and change state where the method changes state. */
  base: (w: World) => fc.Arbitrary<JObject>;
  fields: (w: World, body: JObject) => FieldSpec[];
}

const GENERIC = 'com.docker.network.generic';
const EXPOSED = 'com.docker.network.endpoint.exposedports';
const MAC_OPTION = 'com.docker.network.endpoint.macaddress';

/** An object field that takes `null` (Options, Interface, ...): any non-object but null. */
const notObjectField = (path: Path): FieldSpec => ({ path, invalid: notObject(false) });

/** A key for an invalid map entry: `__proto__` is dropped by the schema (no prototype pollution), never checked. */
const entryKey = unknownOptionKey.filter((k) => k !== '__proto__');

/** A string → string map (IPAM options, AllocateNetwork options): non-objects, or an entry that is not a string. */
const invalidStringMap: fc.Arbitrary<J> = fc.oneof(
  notObject(false),
  fc.tuple(entryKey, notString()).map(([k, v]) => Object.fromEntries([[k, v]]) as JObject),
  fc.tuple(tooLong(1024), fc.constant('v')).map(([k, v]) => Object.fromEntries([[k, v]]) as JObject),
  fc.tuple(entryKey, tooLong(4096)).map(([k, v]) => Object.fromEntries([[k, v]]) as JObject),
);

/** Fields of one `IPv4Data`/`IPv6Data` element at `at`, for a datum of IP version `version`. */
function ipamDatumFields(at: Path, version: 4 | 6, strictPool: boolean): FieldSpec[] {
  const otherFamily =
    version === 4
      ? fc.constantFrom('fd00::/64', '::/0', '::ffff:10.0.0.0/120')
      : fc.constantFrom('10.0.0.0/24', '0.0.0.0/0');
  return [
    {
      path: [...at, 'Pool'],
      invalid: strictPool
        ? fc.oneof(invalidCidr(), otherFamily, fc.constantFrom(version === 4 ? '192.168.77.0/24' : 'fd77::/64'))
        : invalidCidr(),
    },
    {
      path: [...at, 'Gateway'],
      // Not an address of the pool (another network, the other family): it would end up on the host's bridge.
      invalid: fc.oneof(invalidCidr(), fc.constantFrom('10.11.0.1/24', '192.168.0.1/16', 'fd00::1/64', '10.10.0.1/8')),
    },
    { path: [...at, 'AddressSpace'], invalid: fc.oneof(notString(), tooLong(256)) },
    notObjectField([...at, 'AuxAddresses']),
    { path: [...at, 'AuxAddresses', 'aux'], invalid: invalidCidr() },
  ];
}

const datum = (cidr: string, gateway: string): JObject => ({
  AddressSpace: 'no_address_space',
  Pool: cidr,
  Gateway: gateway,
});

/** Network options of CreateNetwork whose bad values are refused (uuid: format; name: no such resource). */
function createNetworkOptionFields(w: World): FieldSpec[] {
  const at = (key: string): Path => ['Options', GENERIC, key];
  const uuidKeys = [
    'neutron.pool.uuid',
    'neutron.pool.v6.uuid',
    'neutron.net.uuid',
    'neutron.subnet.uuid',
    'neutron.subnet.v6.uuid',
  ];
  const lookedUp = ['neutron.pool.name', 'neutron.pool.v6.name', 'neutron.net.name'];
  const checkedOnly = ['neutron.subnet.name', 'neutron.subnet.v6.name', 'neutron.net.shared'];
  return [
    ...uuidKeys.map((k) => ({ path: at(k), invalid: invalidUuidOption(false) })),
    ...lookedUp.map((k) => ({ path: at(k), invalid: invalidNameOption(w, false) })),
    ...checkedOnly.map((k) => ({ path: at(k), invalid: fc.oneof(tooLong(255), notString(false)) })),
  ];
}

/** Exposed ports as Docker sends them (port 0 is no port: Neutron refuses it in a rule). */
const exposedPortsArb = fc.array(
  fc.record({ Proto: fc.constantFrom(1, 6, 17, 132), Port: fc.integer({ min: 1, max: 65535 }) }),
  { minLength: 1, maxLength: 5 },
) as fc.Arbitrary<J>;

/** A new network's CIDRs inside the default pools (CreateNetwork falls back to them), away from the world's. */
const freshDefaultCidrs = fc.integer({ min: 200, max: 250 }).map((k) => ({
  v4: `10.10.${k}.0/24`,
  gw4: `10.10.${k}.1/24`,
  v6: `fd6b:7572:7972:${k.toString(16)}::/64`,
  gw6: `fd6b:7572:7972:${k.toString(16)}::1/64`,
}));

const idFields = (...keys: string[]): FieldSpec[] =>
  keys.map((k) => ({ path: [k], invalid: invalidDockerId, required: true }));

const endpointOf = (w: World) => fc.constant<JObject>({ NetworkID: w.netA, EndpointID: w.epA });

export const ROUTES: readonly RouteSpec[] = [
  {
    method: 'NetworkDriver.CreateNetwork',
    base: () =>
      fc.tuple(hexId, freshDefaultCidrs).map(([id, c]) => ({
        NetworkID: id,
        Options: { 'com.docker.network.enable_ipv6': true, [GENERIC]: {} },
        IPv4Data: [datum(c.v4, c.gw4)],
        IPv6Data: [datum(c.v6, c.gw6)],
      })),
    fields: (w) => [
      ...idFields('NetworkID'),
      notObjectField(['Options']),
      notObjectField(['Options', GENERIC]),
      ...createNetworkOptionFields(w),
      {
        path: ['IPv4Data'],
        invalid: fc.oneof(notArray(false), fc.constant(Array.from({ length: 17 }, () => datum('10.10.240.0/24', '')))),
      },
      { path: ['IPv4Data', 0], invalid: notObject() },
      ...ipamDatumFields(['IPv4Data', 0], 4, true),
      { path: ['IPv6Data'], invalid: notArray(false) },
      ...ipamDatumFields(['IPv6Data', 0], 6, true),
    ],
  },
  {
    method: 'NetworkDriver.DeleteNetwork',
    base: (w) => fc.constantFrom(w.netA, w.netB).map((id) => ({ NetworkID: id })),
    fields: () => idFields('NetworkID'),
  },
  {
    method: 'NetworkDriver.CreateEndpoint',
    base: (w) =>
      fc
        .tuple(hexId, fc.integer({ min: 100, max: 250 }), freshMac, fc.option(exposedPortsArb))
        .map(([ep, host, mac, ports]) => ({
          NetworkID: w.netA,
          EndpointID: ep,
          Interface: { Address: `10.60.0.${host}/24`, AddressIPv6: '', MacAddress: mac },
          // CreateEndpoint attaches the exposed-ports group while binding (src/driver/endpoint.ts).
          Options: ports === null ? {} : { [EXPOSED]: ports },
        })),
    fields: () => [
      ...idFields('NetworkID', 'EndpointID'),
      { path: ['Interface'], invalid: notObject(true), required: true },
      {
        path: ['Interface', 'Address'],
        invalid: fc.oneof(invalidCidr(), fc.constantFrom('10.61.0.5/24', '192.168.1.1/24')),
        required: true,
      },
      { path: ['Interface', 'AddressIPv6'], invalid: invalidCidr() },
      { path: ['Interface', 'MacAddress'], invalid: fc.oneof(invalidMac(), unusableMac) },
      notObjectField(['Options']),
      { path: ['Options', EXPOSED], invalid: invalidExposedPorts },
    ],
  },
  { method: 'NetworkDriver.DeleteEndpoint', base: endpointOf, fields: () => idFields('NetworkID', 'EndpointID') },
  { method: 'NetworkDriver.EndpointOperInfo', base: endpointOf, fields: () => idFields('NetworkID', 'EndpointID') },
  {
    method: 'NetworkDriver.Join',
    base: (w) =>
      fc.constant({
        NetworkID: w.netA,
        EndpointID: w.epA,
        SandboxKey: '/var/run/docker/netns/0123456789ab',
        Options: {},
      }),
    fields: () => [
      ...idFields('NetworkID', 'EndpointID'),
      { path: ['SandboxKey'], invalid: invalidSandboxKey, required: true },
      notObjectField(['Options']),
    ],
  },
  { method: 'NetworkDriver.Leave', base: endpointOf, fields: () => idFields('NetworkID', 'EndpointID') },
  {
    method: 'NetworkDriver.ProgramExternalConnectivity',
    base: (w) =>
      exposedPortsArb.map((ports) => ({ NetworkID: w.netB, EndpointID: w.epB, Options: { [EXPOSED]: ports } })),
    fields: () => [
      ...idFields('NetworkID', 'EndpointID'),
      notObjectField(['Options']),
      { path: ['Options', EXPOSED], invalid: invalidExposedPorts },
    ],
  },
  {
    method: 'NetworkDriver.RevokeExternalConnectivity',
    base: endpointOf,
    fields: () => idFields('NetworkID', 'EndpointID'),
  },
  {
    method: 'NetworkDriver.AllocateNetwork',
    base: () =>
      fc
        .tuple(
          dockerIdArb,
          fc.dictionary(fc.oneof(fc.string(), hostileString), fc.oneof(fc.string(), hostileString), { maxKeys: 3 }),
        )
        .map(([id, opts]) => ({
          NetworkID: id,
          Options: opts,
          IPv4Data: [datum('10.0.0.0/24', '10.0.0.1/24')],
          IPv6Data: [],
        })),
    fields: () => [
      ...idFields('NetworkID'),
      {
        path: ['Options'],
        invalid: fc.oneof(
          notObject(false),
          fc.tuple(entryKey, notString()).map(([k, v]) => Object.fromEntries([[k, v]]) as JObject),
        ),
      },
      { path: ['IPv4Data'], invalid: notArray(false) },
      ...ipamDatumFields(['IPv4Data', 0], 4, false),
      { path: ['IPv6Data'], invalid: notArray(false) },
    ],
  },
  {
    method: 'NetworkDriver.FreeNetwork',
    base: () => dockerIdArb.map((id) => ({ NetworkID: id })),
    fields: () => idFields('NetworkID'),
  },
  ...['NetworkDriver.DiscoverNew', 'NetworkDriver.DiscoverDelete'].map(
    (method): RouteSpec => ({
      method,
      base: () =>
        fc.constant({ DiscoveryType: 1, DiscoveryData: { Address: '10.1.2.3', BindAddress: '', Self: false } }),
      fields: () => [
        {
          path: ['DiscoveryType'],
          invalid: fc.oneof(
            fc.constantFrom<J>('1', 1.5, -0.5, 1e300, true, null, [1], { t: 1 }),
            fc.double({ noNaN: true, noDefaultInfinity: true }).filter((d) => !Number.isInteger(d)),
            hostileString,
          ),
          required: true,
        },
      ],
    }),
  ),
  {
    method: 'NetworkDriver.GwAllocCheck',
    base: () => fc.constant({ Options: { 'com.docker.network.enable_ipv6': false, [GENERIC]: {} } }),
    fields: () => [notObjectField(['Options'])],
  },
  {
    method: 'IpamDriver.RequestPool',
    base: () =>
      fc
        .tuple(
          fc.integer({ min: 0, max: 255 }),
          fc.boolean(),
          fc.oneof(
            fc.constant('no_address_space'),
            hostileString.filter((s) => s.length <= 256),
          ),
          fc.boolean(),
        )
        .map(([k, v6, space, sub]) => ({
          AddressSpace: space,
          Pool: v6 ? `fd70:0:0:${k.toString(16)}::/64` : `10.70.${k}.0/24`,
          SubPool: sub ? (v6 ? `fd70:0:0:${k.toString(16)}::/80` : `10.70.${k}.128/25`) : '',
          Options: {},
          V6: v6,
        })),
    fields: (w, body) => {
      const v6 = body.V6 === true;
      const infix = v6 ? 'v6.' : '';
      const otherFamily = v6 ? fc.constantFrom('10.0.0.0/24', '0.0.0.0/0') : fc.constantFrom('fd00::/64', '::/0');
      const outside = v6
        ? fc.constantFrom('fd71::/80', 'fd70::/16')
        : fc.constantFrom('10.71.0.0/25', '10.70.0.0/16', '0.0.0.0/0');
      return [
        { path: ['AddressSpace'], invalid: fc.oneof(notString(), tooLong(256)) },
        { path: ['Pool'], invalid: fc.oneof(invalidCidr(), otherFamily) },
        { path: ['SubPool'], invalid: fc.oneof(invalidCidr(), otherFamily, outside) },
        { path: ['Options'], invalid: invalidStringMap },
        { path: ['Options', `neutron.pool.${infix}uuid`], invalid: invalidUuidOption(true) },
        { path: ['Options', `neutron.pool.${infix}name`], invalid: invalidNameOption(w, true) },
        { path: ['Options', `neutron.subnet.${infix}uuid`], invalid: invalidUuidOption(true) },
        { path: ['Options', `neutron.subnet.${infix}name`], invalid: invalidNameOption(w, true) },
        { path: ['V6'], invalid: fc.constantFrom<J>('true', 'false', 0, 1, null, [], {}, 'yes') },
      ];
    },
  },
  {
    method: 'IpamDriver.ReleasePool',
    base: (w) => fc.constant({ PoolID: w.poolC }),
    fields: (w) => [
      { path: ['PoolID'], invalid: invalidPoolId(w.poolC.split('@')[0]!, w.poolC.split('@')[1]!), required: true },
    ],
  },
  {
    method: 'IpamDriver.RequestAddress',
    base: (w) => freshMac.map((mac) => ({ PoolID: w.poolA, Address: '', Options: { [MAC_OPTION]: mac } })),
    fields: (w) => [
      { path: ['PoolID'], invalid: invalidPoolId(w.poolAUuid, w.cidrA), required: true },
      {
        path: ['Address'],
        // Outside the subnet, the gateway, the network/broadcast address, an address another port holds.
        invalid: fc.oneof(
          invalidIp(),
          fc.constantFrom('10.61.0.5', 'fd00::5', w.gatewayA, '10.60.0.0', '10.60.0.255', w.addrA, w.spareAddr),
        ),
      },
      { path: ['Options'], invalid: invalidStringMap },
      { path: ['Options', MAC_OPTION], invalid: fc.oneof(invalidMacString, unusableMac) },
    ],
  },
  {
    method: 'IpamDriver.ReleaseAddress',
    // The unbound port's address: a live endpoint's (addrA) is never released (src/driver/ipam-addresses.ts).
    base: (w) => fc.constant({ PoolID: w.poolA, Address: w.spareAddr }),
    fields: (w) => [
      { path: ['PoolID'], invalid: invalidPoolId(w.poolAUuid, w.cidrA), required: true },
      { path: ['Address'], invalid: invalidIp(), required: true },
    ],
  },
];

/** Methods without arguments: the body is ignored and the reply is fixed. */
export const NO_ARGUMENT_ROUTES: Readonly<Record<string, unknown>> = {
  'Plugin.Activate': { Implements: ['NetworkDriver', 'IpamDriver'] },
  'NetworkDriver.GetCapabilities': { Scope: 'local', ConnectivityScope: 'local' },
  'IpamDriver.GetCapabilities': { RequiresMACAddress: true, RequiresRequestReplay: false },
  'IpamDriver.GetDefaultAddressSpaces': {
    LocalDefaultAddressSpace: 'no_address_space',
    GlobalDefaultAddressSpace: 'no_address_space',
  },
};

// ---- invalid requests and malformed bodies ----

export interface FuzzCase {
  method: string;
  body: Buffer;
  /** What was done to the base, for failure messages. */
  note: string;
}

/** A case as fast-check reports it: method, note and the start of the body (bodies can be megabytes). */
export function describeCase(c: FuzzCase): string {
  const text = c.body.toString('utf8');
  return `${c.method} [${c.note}] ${JSON.stringify(text.length > 300 ? `${text.slice(0, 300)}…` : text)} (${c.body.length} bytes)`;
}

function fuzzCase(method: string, body: Buffer, note: string): FuzzCase {
  const c: FuzzCase = { method, body, note };
  Object.defineProperty(c, fc.toStringMethod, { value: () => describeCase(c) });
  return c;
}

/** A request of `route` made invalid in one validated field (replaced, or removed when required), plus noise. */
export function invalidRequest(route: RouteSpec, w: World): fc.Arbitrary<FuzzCase> {
  return route.base(w).chain((body) => {
    const fields = route.fields(w, body);
    return fc.integer({ min: 0, max: fields.length - 1 }).chain((i) => {
      const field = fields[i]!;
      const change = field.required
        ? fc.oneof(
            { weight: 5, arbitrary: field.invalid.map((v) => ({ v })) },
            { weight: 1, arbitrary: fc.constant({ v: undefined }) },
          )
        : field.invalid.map((v): { v: J | undefined } => ({ v }));
      return fc.tuple(change, fc.boolean(), noiseArb).map(([{ v }, dup, noise]) => {
        // Noise first, so that the invalid value is not overwritten by noise at the same path.
        const mutated = setPath(addNoise(body, noise), field.path, v, dup && getPath(body, field.path) !== undefined);
        const text = serialize(mutated);
        return fuzzCase(
          route.method,
          Buffer.from(text),
          `${field.path.join('.')} ← ${v === undefined ? '(removed)' : preview(serialize(v))}${dup ? ' (duplicate key)' : ''}; noise ${noise.length}`,
        );
      });
    });
  });
}

function preview(text: string): string {
  return text.length > 120 ? `${JSON.stringify(text.slice(0, 120))}… (${text.length} chars)` : JSON.stringify(text);
}

/** Control characters that JSON allows neither in strings nor between tokens. */
const CONTROL = [
  ...Array.from({ length: 9 }, (_, i) => i),
  0x0b,
  0x0c,
  ...Array.from({ length: 18 }, (_, i) => 0x0e + i),
];

/** A valid request of `route` turned into a body that is not one JSON object. */
export function malformedRequest(route: RouteSpec, w: World): fc.Arbitrary<FuzzCase> {
  return route.base(w).chain((body) => {
    const text = serialize(body);
    const cut = fc
      .integer({ min: 0, max: text.length - 1 })
      .map((n) => ({ bytes: Buffer.from(text.slice(0, n)), note: `cut at ${n}/${text.length}` }));
    const control = fc.tuple(fc.integer({ min: 0, max: text.length }), fc.constantFrom(...CONTROL)).map(([at, c]) => ({
      bytes: Buffer.from(text.slice(0, at) + String.fromCharCode(c) + text.slice(at)),
      note: `control 0x${c.toString(16)} at ${at}`,
    }));
    const trailing = fc
      .constantFrom('x', '{}', text, ',', ']', '}', '\0', 'null', '/* */', '// x')
      .map((t) => ({ bytes: Buffer.from(text + t), note: `trailing ${JSON.stringify(t.slice(0, 20))}` }));
    const notAnObject = fc
      .constantFrom(`[${text}]`, 'null', 'true', '0', '-1e999', `"${text.replaceAll('"', '\\"')}"`, '[]', '""')
      .map((t) => ({ bytes: Buffer.from(t), note: `not an object: ${t.slice(0, 20)}` }));
    const badBytes = fc
      .constantFrom(
        Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(text)]),
        Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(text)]),
        Buffer.concat([Buffer.from([0xc0, 0x80]), Buffer.from(text)]),
        Buffer.from(text, 'utf16le'),
        Buffer.from(`\ufeff${text}`),
      )
      .map((bytes) => ({ bytes, note: 'bad encoding' }));
    const garbage = fc
      .oneof(
        fc.uint8Array({ minLength: 1, maxLength: 512 }).map((a) => Buffer.from(a)),
        fc.constantFrom(
          Buffer.from('NetworkID=abc&x=1'),
          Buffer.from('<xml/>'),
          Buffer.from("{'NetworkID': 'x'}"),
          Buffer.from('{NetworkID: 1}'),
          Buffer.from('{"a":1,}'),
        ),
      )
      .filter((b) => {
        try {
          const v: unknown = JSON.parse(b.toString('utf8'));
          return typeof v !== 'object' || v === null || Array.isArray(v);
        } catch {
          return true;
        }
      })
      .map((bytes) => ({ bytes, note: `garbage ${bytes.length} bytes` }));
    return fc
      .oneof(cut, control, trailing, notAnObject, badBytes, garbage)
      .map(({ bytes, note }) => fuzzCase(route.method, bytes, note));
  });
}
