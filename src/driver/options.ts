/**
 * The `-o` (network driver) and `--ipam-opt` (IPAM driver) keys of kuryr-libnetwork.
 * Plain keys apply to IPv4, `.v6.` keys to IPv6.
 */
import { fail } from '../errors.ts';
import { isUuid } from '../util/ids.ts';
import type { IpVersion } from '../util/ip.ts';

/** Options that select or describe Neutron resources for one IP family. */
export interface FamilyOptions {
  poolId?: string;
  poolName?: string;
  subnetId?: string;
  subnetName?: string;
}

/** Options of a `docker network create`. */
export interface NeutronOptions {
  netId?: string;
  netName?: string;
  /** `neutron.net.shared`; undefined when not given. */
  shared?: boolean;
  v4: FamilyOptions;
  v6: FamilyOptions;
}

const TRUE_WORDS = new Set(['1', 't', 'true', 'on', 'y', 'yes']);
const MAX_NAME = 255;

/** kuryr's boolean parsing: `1/t/true/on/y/yes` (any case) is true, anything else false. */
export function parseBool(value: string): boolean {
  return TRUE_WORDS.has(value.trim().toLowerCase());
}

function text(options: Readonly<Record<string, unknown>>, key: string): string | undefined {
  const value = options[key];
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value !== 'string') throw fail.invalid(`option ${key} must be a string`);
  if (value.length > MAX_NAME) throw fail.invalid(`option ${key} is longer than ${MAX_NAME} characters`);
  return value;
}

function uuid(options: Readonly<Record<string, unknown>>, key: string): string | undefined {
  const value = text(options, key);
  if (value !== undefined && !isUuid(value.toLowerCase()))
    throw fail.invalid(`option ${key} must be a UUID, got ${JSON.stringify(value)}`);
  return value?.toLowerCase();
}

function family(options: Readonly<Record<string, unknown>>, infix: '' | 'v6.'): FamilyOptions {
  const out: FamilyOptions = {};
  const poolId = uuid(options, `neutron.pool.${infix}uuid`);
  const poolName = text(options, `neutron.pool.${infix}name`);
  const subnetId = uuid(options, `neutron.subnet.${infix}uuid`);
  const subnetName = text(options, `neutron.subnet.${infix}name`);
  if (poolId !== undefined) out.poolId = poolId;
  if (poolName !== undefined) out.poolName = poolName;
  if (subnetId !== undefined) out.subnetId = subnetId;
  if (subnetName !== undefined) out.subnetName = subnetName;
  return out;
}

/** Parses a flat option map (the `-o` map, or the `--ipam-opt` map). Unknown keys are ignored, as kuryr does. */
export function parseNeutronOptions(options: Readonly<Record<string, unknown>> | null | undefined): NeutronOptions {
  const map = options ?? {};
  const out: NeutronOptions = { v4: family(map, ''), v6: family(map, 'v6.') };
  const netId = uuid(map, 'neutron.net.uuid');
  const netName = text(map, 'neutron.net.name');
  const shared = text(map, 'neutron.net.shared');
  if (netId !== undefined) out.netId = netId;
  if (netName !== undefined) out.netName = netName;
  if (shared !== undefined) out.shared = parseBool(shared);
  return out;
}

/** The options of one IP family. */
export function familyOptions(options: NeutronOptions, version: IpVersion): FamilyOptions {
  return version === 4 ? options.v4 : options.v6;
}

/** The `com.docker.network.generic` map of CreateNetwork options (the `-o` values). */
export function genericOptions(options: Readonly<Record<string, unknown>> | null | undefined): Record<string, unknown> {
  const generic = options?.['com.docker.network.generic'];
  if (generic === undefined || generic === null) return {};
  if (typeof generic !== 'object' || Array.isArray(generic)) {
    throw fail.invalid('Options["com.docker.network.generic"] must be an object');
  }
  return generic as Record<string, unknown>;
}
