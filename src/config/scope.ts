/**
 * `capability_scope = global` (Swarm mode, docs/swarm.md) shares one Neutron between hosts. The embedded backend's
 * store lives on one host and its plugin plays that host's agent: no other host sees its networks, so it refuses
 * the global scope instead of letting Swarm place tasks on networks that exist on one host only.
 */
import { fail } from '../errors.ts';

export const EMBEDDED_GLOBAL_SCOPE_REFUSED =
  'capability_scope = global needs the neutron backend: the embedded backend keeps its networks in a store on this ' +
  'host only, so other hosts (Swarm nodes) cannot share them; use capability_scope = local, or [kuryr_ts] backend = neutron';

/** Throws a configuration error for the embedded backend with `capability_scope = global`. */
export function refuseEmbeddedGlobalScope(config: {
  backend: string;
  driver: { capabilityScope: 'local' | 'global' };
}): void {
  if (config.backend === 'embedded' && config.driver.capabilityScope === 'global') {
    throw fail.config(EMBEDDED_GLOBAL_SCOPE_REFUSED);
  }
}
