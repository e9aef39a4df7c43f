/**
 * Which host a port belongs to. With a real Neutron several hosts' plugins share the networks (one Neutron network
 * backs a Docker network on every host, and with `capability_scope = global` every host calls DeleteNetwork for
 * the same Docker network ID), so a host only ever deletes or hands back its own ports: those bound to it
 * (`binding:host_id`), and the unbound ones its IPAM made, whose description names the host
 * (`ipamPortDescription`). An unbound port that names no host (made before this mark existed, or a pre-existing
 * port the IPAM took over) is nobody's: no host removes it as a leftover.
 */
import type { Port } from '../neutron/types.ts';
import type { Marks } from './marks.ts';
import { soleSwarmHolder } from './swarm.ts';

/** Neutron's limit on descriptions. */
const DESCRIPTION_LIMIT = 255;

const CREATOR = /\(kuryr-ts on ([^)]+)\)$/;

/**
 * The description of a port our IPAM creates: the host whose plugin made it and, when the engine names it, the
 * container (`Docker container web-1 (kuryr-ts on host-a)`).
 */
export function ipamPortDescription(host: string, containerName?: string): string {
  const mark = `(kuryr-ts on ${host.replace(/[()]/g, '_')})`;
  if (containerName === undefined) return mark;
  const room = DESCRIPTION_LIMIT - mark.length - 'Docker container  '.length;
  return `Docker container ${containerName.slice(0, Math.max(room, 0))} ${mark}`;
}

/**
 * The host named by `ipamPortDescription`, or undefined. A Swarm address (swarm.ts) is its sole node holder's
 * once no manager's allocation holds it.
 */
export function creatorOfPort(port: Pick<Port, 'description'>): string | undefined {
  return CREATOR.exec(port.description ?? '')?.[1] ?? soleSwarmHolder(port);
}

/** The host a port belongs to: the one it is bound to, else the one whose IPAM made it (undefined: unknown). */
export function hostOfPort(port: Pick<Port, 'binding:host_id' | 'description'>): string | undefined {
  const bound = port['binding:host_id'];
  return bound !== '' && bound !== undefined ? bound : creatorOfPort(port);
}

/** True for a port of `host`: bound to it, or unbound and made by its IPAM. */
export function isPortOfHost(port: Pick<Port, 'binding:host_id' | 'description'>, host: string): boolean {
  return hostOfPort(port) === host;
}

/** True for a port of ours (kuryr's) that belongs to another host than `host`: that host still uses the network. */
export function isOtherHostsPort(marks: Marks, port: Port, host: string): boolean {
  const owner = hostOfPort(port);
  return owner !== undefined && owner !== host && marks.isOurPort(port);
}
