/**
 * `kuryr subnetpool create|list|delete`: manage subnet pools in the backend, as `openstack subnet pool ...`
 * does on Neutron. With the embedded backend this is how operators prepare the pools that
 * `-o neutron.pool.name=P --ipam-opt neutron.pool.name=P` refer to (e.g. for overlapping CIDRs).
 */
import { openBackend } from '../backend.ts';
import type { Config } from '../config/config.ts';
import { fail } from '../errors.ts';
import type { SubnetPool } from '../neutron/types.ts';
import { isCidr, normalizeCidr, parseCidr } from '../util/ip.ts';

export interface SubnetPoolCreateArgs {
  name: string;
  prefixes: string[];
  defaultPrefixlen?: number;
  shared?: boolean;
}

/** Creates a pool; the name must be unused. */
export async function createSubnetPool(config: Config, args: SubnetPoolCreateArgs): Promise<SubnetPool> {
  if (args.prefixes.length === 0) throw fail.config('give at least one --prefix CIDR');
  for (const p of args.prefixes) if (!isCidr(p)) throw fail.config(`--prefix ${JSON.stringify(p)} is not a CIDR`);
  const prefixes = args.prefixes.map(normalizeCidr);
  const longest = Math.max(...prefixes.map((p) => parseCidr(p).prefixLength));
  const backend = await openBackend(config);
  try {
    if ((await backend.neutron.listSubnetPools({ name: args.name })).length > 0) {
      throw fail.config(`a subnet pool named ${JSON.stringify(args.name)} already exists`);
    }
    return await backend.neutron.createSubnetPool({
      name: args.name,
      prefixes,
      default_prefixlen: args.defaultPrefixlen ?? longest,
      shared: args.shared ?? false,
    });
  } finally {
    await backend.close();
  }
}

/** All pools. */
export async function listSubnetPools(config: Config): Promise<SubnetPool[]> {
  const backend = await openBackend(config);
  try {
    return await backend.neutron.listSubnetPools();
  } finally {
    await backend.close();
  }
}

/** Deletes a pool by name or ID (Neutron refuses while subnets are allocated from it). */
export async function deleteSubnetPool(config: Config, nameOrId: string): Promise<void> {
  const backend = await openBackend(config);
  try {
    const byName = await backend.neutron.listSubnetPools({ name: nameOrId });
    const pools = byName.length > 0 ? byName : await backend.neutron.listSubnetPools({ id: nameOrId });
    if (pools.length === 0) throw fail.notFound(`no subnet pool named or with ID ${JSON.stringify(nameOrId)}`);
    if (pools.length > 1) throw fail.config(`several subnet pools are named ${JSON.stringify(nameOrId)}: give the ID`);
    await backend.neutron.deleteSubnetPool(pools[0]!.id);
  } finally {
    await backend.close();
  }
}
