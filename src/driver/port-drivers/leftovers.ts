/**
 * What the nested port drivers can leave behind when a step fails halfway, for reconciliation (reconcile/gc.ts):
 * - nested: pairs on the VM port for a container port that no longer exists (its IP/MAC held by no port; pairs
 *   with the VM's own MAC, as ipvlan and operators' VIPs use, are never touched);
 * - vlan: subports of the VM's trunk whose port is ours and whose endpoint is gone (no endpoint tag, or one
 *   Docker no longer knows), or whose port no longer exists.
 * The devices (macvlan, ipvlan, vlan children named `t_c<port[:11]>` with our alias) are found with the veths.
 */
import type { Binder } from './binder.ts';
import type { Port } from '../../neutron/types.ts';
import type { Marks } from '../marks.ts';

export interface PortDriverLeftover {
  kind: 'address-pair' | 'subport';
  id: string;
  name?: string;
  reason: string;
  remove(): Promise<void>;
}

export interface LeftoverContext {
  marks: Marks;
  /** Docker's endpoints, when Docker was asked (and trusted). */
  dockerEndpoints: ReadonlySet<string> | undefined;
  /** Past the grace period (a port younger than it may belong to a request in flight). */
  old(timestamp: string): boolean;
}

/** A port driver that can find its own leftovers. */
export interface LeftoverFinder {
  leftovers(ctx: LeftoverContext): Promise<PortDriverLeftover[]>;
}

export function hasLeftoverFinder(binder: Binder): binder is Binder & LeftoverFinder {
  return typeof (binder as Partial<LeftoverFinder>).leftovers === 'function';
}

/** A subport's port is no endpoint's any more: ours, and its endpoint untagged or unknown to Docker. */
export function ownedByNoEndpoint(port: Port, ctx: LeftoverContext): boolean {
  if (!ctx.marks.isOurPort(port) || !ctx.old(port.updated_at)) return false;
  const endpoint = ctx.marks.endpointIdOfPort(port);
  if (endpoint === undefined) return !ctx.marks.hasEndpoint(port);
  return ctx.dockerEndpoints !== undefined && !ctx.dockerEndpoints.has(endpoint);
}

/** The leftovers of the configured port driver (none for the veth driver). */
export async function portDriverLeftovers(binder: Binder, ctx: LeftoverContext): Promise<PortDriverLeftover[]> {
  return hasLeftoverFinder(binder) ? binder.leftovers(ctx) : [];
}
