/**
 * Which subnet pools belong to kuryr (and may be deleted by it) and which only are used by it.
 */
import type { DriverSettings } from '../config/config.ts';
import type { SubnetPool } from '../neutron/types.ts';
import { POOL_EXISTING_TAG } from './tags.ts';

/**
 * True for a pool kuryr created for one Docker network (`<prefix>-<cidr>`): never the configured default
 * pools, never a pre-existing pool a user named with `neutron.pool.*`.
 */
export function isOwnPool(settings: DriverSettings, pool: SubnetPool): boolean {
  return (
    pool.name.startsWith(`${settings.subnetpoolNamePrefix}-`) &&
    pool.name !== settings.defaultSubnetpoolV4 &&
    pool.name !== settings.defaultSubnetpoolV6 &&
    !pool.tags.includes(POOL_EXISTING_TAG)
  );
}
