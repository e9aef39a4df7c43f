/**
 * `ProgramExternalConnectivity` / `RevokeExternalConnectivity`: a container's exposed ports become a Neutron
 * security group `<port id>-exposed_ports` with one ingress rule per protocol and run of consecutive ports,
 * added to the endpoint's port, as kuryr-libnetwork does. Unlike the original, the group is attached when the
 * endpoint's port is bound (CreateEndpoint carries the exposed ports too) and removed with the port, so a port
 * is never updated once wired; it works in tag mode (the original's does nothing there), SCTP is supported, and it is idempotent.
 */
import { fail } from '../errors.ts';
import { isNotFound } from '../neutron/errors.ts';
import type { Port, SecurityGroup, SecurityGroupRuleCreate } from '../neutron/types.ts';
import { type DriverRuntime, errorMessage } from './context.ts';
import { lockKeys } from './locks.ts';
import { portOfEndpoint } from './lookup.ts';
import { publishPorts, unpublishPorts } from './published-ports.ts';

export const EXPOSED_PORTS_OPTION = 'com.docker.network.endpoint.exposedports';
const SG_DESCRIPTION = 'Docker exposed ports created by Kuryr.';
const PROTOCOLS: Record<number, string> = { 1: 'icmp', 6: 'tcp', 17: 'udp', 132: 'sctp' };

export interface ExposedPort {
  Proto: number;
  Port: number;
}

/** The exposed ports in sandbox/endpoint options, validated. */
export function exposedPorts(options: Readonly<Record<string, unknown>> | null | undefined): ExposedPort[] {
  const raw = options?.[EXPOSED_PORTS_OPTION];
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw)) throw fail.invalid(`${EXPOSED_PORTS_OPTION} must be a list`);
  return raw.map((entry: unknown) => {
    const e = entry as { Proto?: unknown; Port?: unknown } | null;
    const proto = e?.Proto;
    const port = e?.Port;
    if (typeof proto !== 'number' || typeof port !== 'number' || !Number.isInteger(port) || port < 0 || port > 65535) {
      throw fail.invalid(`${EXPOSED_PORTS_OPTION}: invalid entry ${JSON.stringify(entry)}`);
    }
    if (PROTOCOLS[proto] === undefined) throw fail.invalid(`Bad protocol number for exposed port: ${proto}`);
    return { Proto: proto, Port: port };
  });
}

/** Ingress rules for the exposed ports: consecutive ports of one protocol merge into one range. */
export function rulesFor(securityGroupId: string, ports: readonly ExposedPort[]): SecurityGroupRuleCreate[] {
  const byProto = new Map<number, number[]>();
  for (const p of ports) byProto.set(p.Proto, [...(byProto.get(p.Proto) ?? []), p.Port]);
  const rules: SecurityGroupRuleCreate[] = [];
  for (const [proto, list] of [...byProto].sort(([a], [b]) => a - b)) {
    const protocol = PROTOCOLS[proto]!;
    if (protocol === 'icmp') {
      rules.push({ security_group_id: securityGroupId, direction: 'ingress', protocol });
      continue;
    }
    const sorted = [...new Set(list)].sort((a, b) => a - b);
    let start = sorted[0]!;
    let prev = start;
    for (const port of [...sorted.slice(1), Number.NaN]) {
      if (port === prev + 1) {
        prev = port;
        continue;
      }
      rules.push({
        security_group_id: securityGroupId,
        direction: 'ingress',
        protocol,
        port_range_min: start,
        port_range_max: prev,
      });
      start = port;
      prev = port;
    }
  }
  return rules;
}

/** Name of the exposed-ports group of a port (the original's). */
export function groupName(portId: string): string {
  return `${portId}-exposed_ports`;
}

/** Creates the exposed-ports group of a port with its rules (deleting the group again if a rule fails). */
export async function createExposedGroup(
  rt: DriverRuntime,
  portId: string,
  ports: readonly ExposedPort[],
): Promise<SecurityGroup> {
  const group = await rt.neutron.createSecurityGroup({ name: groupName(portId), description: SG_DESCRIPTION });
  try {
    await rt.neutron.createSecurityGroupRules(rulesFor(group.id, ports));
  } catch (err) {
    await deleteGroupQuietly(rt, group.id);
    throw err;
  }
  return group;
}

async function deleteGroupQuietly(rt: DriverRuntime, id: string): Promise<void> {
  await rt.neutron
    .deleteSecurityGroup(id)
    .catch((e: unknown) =>
      rt.log.error({ err: errorMessage(e), group: id }, 'could not delete security group after a failure'),
    );
}

/**
 * The exposed-ports groups of a port, or none without a lookup when the port has at most one group (the
 * project's default).
 */
export async function exposedGroupsOf(rt: DriverRuntime, port: Port): Promise<SecurityGroup[]> {
  if (port.security_groups.length <= 1) return [];
  return rt.neutron.listSecurityGroups({ name: groupName(port.id) });
}

/** Deletes the exposed-ports groups of a port that is gone (or no longer uses them). */
export async function deleteExposedGroups(rt: DriverRuntime, groups: readonly SecurityGroup[]): Promise<void> {
  for (const group of groups) {
    await rt.neutron.deleteSecurityGroup(group.id).catch((err: unknown) => {
      if (!isNotFound(err)) throw err;
    });
  }
}

/**
 * `NetworkDriver.ProgramExternalConnectivity`: the published ports (published-ports.ts), then the exposed ports'
 * group; the ports are unpublished again when the group fails.
 */
export async function programExternalConnectivity(
  rt: DriverRuntime,
  endpointId: string,
  options: Readonly<Record<string, unknown>> | null | undefined,
): Promise<void> {
  await publishPorts(rt, endpointId, options);
  await programExposedGroup(rt, endpointId, options).catch(async (err: unknown) => {
    await unpublishPorts(rt, endpointId);
    throw err;
  });
}

/**
 * The exposed ports' group. CreateEndpoint already attached the group when Docker gave it
 * the exposed ports (it usually does), so this normally finds it in place and changes nothing: updating a port
 * that is already wired makes agents re-apply their rules, which some (linuxbridge with ebtables-nft) fail at.
 */
async function programExposedGroup(
  rt: DriverRuntime,
  endpointId: string,
  options: Readonly<Record<string, unknown>> | null | undefined,
): Promise<void> {
  if (!rt.settings.processExternalConnectivity) return;
  const ports = exposedPorts(options);
  if (ports.length === 0) return;
  await rt.locks.run(lockKeys.endpoint(endpointId), async () => {
    const port = await portOfEndpoint(rt, endpointId);
    if (port === undefined) throw fail.notFound(`The port doesn't exist for the identifier ${endpointId}`);
    const existing = await rt.neutron.listSecurityGroups({ name: groupName(port.id) });
    if (existing.length > 0) {
      const missing = existing.map((g) => g.id).filter((id) => !port.security_groups.includes(id));
      if (missing.length > 0) {
        await rt.neutron.updatePort(port.id, { security_groups: [...missing, ...port.security_groups] });
      }
      return;
    }
    const group = await createExposedGroup(rt, port.id, ports);
    try {
      await rt.neutron.updatePort(port.id, { security_groups: [group.id, ...port.security_groups] });
    } catch (err) {
      await deleteGroupQuietly(rt, group.id);
      throw err;
    }
  });
}

/**
 * `NetworkDriver.RevokeExternalConnectivity`: the published ports go. The exposed-ports group lives as long as
 * the endpoint's port and goes with it (ReleaseAddress), so revoking does not change a wired port (see above).
 */
export async function revokeExternalConnectivity(rt: DriverRuntime, endpointId: string): Promise<void> {
  await unpublishPorts(rt, endpointId);
}
