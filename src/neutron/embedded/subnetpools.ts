/** Subnet pools: prefixes of one IP family, Neutron's prefix-length defaults and bounds, grow-only updates. */
import { neutronErrors } from '../errors.ts';
import type { SubnetPool, SubnetPoolCreate, SubnetPoolUpdate } from '../types.ts';
import { type Cidr, cidrContains, formatCidr, type IpVersion, parseCidr } from '../../util/ip.ts';
import { Assignments, type StoreContext, selectRow, touch } from './context.ts';
import { subnetPoolFromRow } from './rows.ts';
import { compactPrefixes, PREFIX_DEFAULTS } from './subnet-allocation.ts';
import {
  asBody,
  type Body,
  checkArray,
  checkAttributes,
  checkCidr,
  has,
  newId,
  optBoolean,
  optString,
  required,
  timestamp,
  toInteger,
} from './validate.ts';

const UPDATABLE = [
  'name',
  'description',
  'prefixes',
  'default_prefixlen',
  'min_prefixlen',
  'max_prefixlen',
  'is_default',
];

/** Read one subnet pool (404 SubnetPoolNotFound). */
export function showSubnetPool(ctx: StoreContext, id: string): SubnetPool {
  return subnetPoolFromRow(selectRow(ctx, 'subnetpools', id));
}

/** Parse `prefixes`: a non-empty list of CIDRs of one family, compacted and sorted. */
function parsePrefixes(value: unknown): { version: IpVersion; prefixes: Cidr[] } {
  const list = checkArray(value, 'prefixes').map((p) => parseCidr(checkCidr(p, 'prefixes')));
  const first = list[0];
  if (!first) throw neutronErrors.badResourceRequest('subnetpools', 'Empty subnet pool prefix list');
  if (list.some((c) => c.version !== first.version)) throw neutronErrors.prefixVersionMismatch();
  return { version: first.version, prefixes: compactPrefixes(list) };
}

interface Bounds {
  min: number;
  max: number;
  def: number;
}

/** Neutron's `SubnetPoolHelper` checks: 0 ≤ min ≤ default ≤ max ≤ address bits. */
function checkBounds(version: IpVersion, { min, max, def }: Bounds): void {
  const bits = version === 4 ? 32 : 128;
  if (min < 0) throw neutronErrors.invalidAttribute('min_prefixlen', `'${min}' is not a valid prefix length`);
  if (max > bits) throw neutronErrors.illegalSubnetPoolPrefixBounds('max_prefixlen', max, 'ip_version_max', bits);
  if (min > max) throw neutronErrors.illegalSubnetPoolPrefixBounds('min_prefixlen', min, 'max_prefixlen', max);
  if (def < min) throw neutronErrors.illegalSubnetPoolPrefixBounds('default_prefixlen', def, 'min_prefixlen', min);
  if (def > max) throw neutronErrors.illegalSubnetPoolPrefixBounds('default_prefixlen', def, 'max_prefixlen', max);
}

function optLength(b: Body, key: string): number | undefined {
  return has(b, key) ? toInteger(b[key], key) : undefined;
}

/** Only one default pool per IP family. */
function checkSingleDefault(ctx: StoreContext, version: IpVersion, exceptId: string): void {
  const other = ctx.db.get('SELECT id FROM subnetpools WHERE is_default = 1 AND ip_version = ? AND id <> ?', [
    version,
    exceptId,
  ]);
  if (other) {
    throw neutronErrors.invalidInput(
      'A default subnetpool for this IP family has already been set. Only one default may exist per IP family',
    );
  }
}

/** `POST /v2.0/subnetpools`: `min_prefixlen` defaults to 8/64, `max_prefixlen` to 32/128, default to min. */
export function createSubnetPool(ctx: StoreContext, body: SubnetPoolCreate): SubnetPool {
  const b = asBody(body, 'subnetpools');
  checkAttributes(b, [...UPDATABLE, 'shared', 'project_id', 'tenant_id']);
  const { version, prefixes } = parsePrefixes(required(b, 'prefixes'));
  const min = optLength(b, 'min_prefixlen') ?? PREFIX_DEFAULTS[version].min;
  const max = optLength(b, 'max_prefixlen') ?? PREFIX_DEFAULTS[version].max;
  const def = optLength(b, 'default_prefixlen') ?? min;
  checkBounds(version, { min, max, def });
  const id = newId();
  const isDefault = optBoolean(b, 'is_default') ?? false;
  if (isDefault) checkSingleDefault(ctx, version, id);
  const now = timestamp();
  ctx.db.run(
    `INSERT INTO subnetpools (id, project_id, name, description, prefixes, ip_version, default_prefixlen,
       min_prefixlen, max_prefixlen, shared, is_default, created_at, updated_at)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    [
      id,
      optString(b, 'project_id') ?? optString(b, 'tenant_id') ?? ctx.projectId,
      optString(b, 'name') ?? '',
      optString(b, 'description') ?? '',
      JSON.stringify(prefixes.map(formatCidr)),
      version,
      def,
      min,
      max,
      (optBoolean(b, 'shared') ?? false) ? 1 : 0,
      isDefault ? 1 : 0,
      now,
      now,
    ],
  );
  return showSubnetPool(ctx, id);
}

/** `PUT /v2.0/subnetpools/<id>`: prefixes may only grow (every existing prefix stays covered). */
export function updateSubnetPool(ctx: StoreContext, id: string, body: SubnetPoolUpdate): SubnetPool {
  const b = asBody(body, 'subnetpools');
  checkAttributes(b, UPDATABLE);
  const pool = showSubnetPool(ctx, id);
  let prefixes: string[] | undefined;
  if (has(b, 'prefixes')) {
    const next = parsePrefixes(b.prefixes);
    if (next.version !== pool.ip_version) throw neutronErrors.prefixVersionMismatch();
    const covered = pool.prefixes.every((old) => next.prefixes.some((p) => cidrContains(p, parseCidr(old))));
    if (!covered) {
      throw neutronErrors.illegalSubnetPoolPrefixUpdate('Existing prefixes must be a subset of the new prefixes');
    }
    prefixes = next.prefixes.map(formatCidr);
  }
  const bounds = {
    min: optLength(b, 'min_prefixlen') ?? pool.min_prefixlen,
    max: optLength(b, 'max_prefixlen') ?? pool.max_prefixlen,
    def: optLength(b, 'default_prefixlen') ?? pool.default_prefixlen,
  };
  checkBounds(pool.ip_version, bounds);
  const isDefault = optBoolean(b, 'is_default');
  if (isDefault) checkSingleDefault(ctx, pool.ip_version, id);
  new Assignments()
    .set('name', optString(b, 'name'))
    .set('description', optString(b, 'description'))
    .set('prefixes', prefixes && JSON.stringify(prefixes))
    .set('min_prefixlen', bounds.min)
    .set('max_prefixlen', bounds.max)
    .set('default_prefixlen', bounds.def)
    .set('is_default', isDefault)
    .apply(ctx, 'subnetpools', id);
  touch(ctx, 'subnetpools', id);
  return showSubnetPool(ctx, id);
}

/** `DELETE /v2.0/subnetpools/<id>`: 400 SubnetPoolDeleteError while subnets are allocated from it (as Zed). */
export function deleteSubnetPool(ctx: StoreContext, id: string): void {
  showSubnetPool(ctx, id);
  if (ctx.db.get('SELECT 1 FROM subnets WHERE subnetpool_id = ?', [id])) {
    throw neutronErrors.subnetPoolDeleteError('Subnet pool has existing allocations');
  }
  ctx.db.run('DELETE FROM subnetpools WHERE id = ?', [id]);
}
