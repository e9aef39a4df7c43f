/**
 * Published ports (`docker run -p` / `-P`) for the embedded backend, where the plugin plays the host's agent:
 * Docker does no NAT for a remote driver, it hands the port map to `ProgramExternalConnectivity`
 * (`com.docker.network.portmap`, a list of libnetwork `PortBinding`s: `{Proto, Port, HostIP, HostPort,
 * HostPortEnd}`, `HostPort` 0 for `-P` and for `-p PORT`). The host side is binding/publish.ts.
 *
 * A remote driver cannot tell Docker which host port it picked (`docker port` and `docker inspect` show none
 * for a remote driver's endpoint: Docker only reads its own drivers' port maps), so each published port is
 * logged, and `nft list map inet kuryr_ts publish_any4` shows them all.
 */
import { type PortMapping, PortTakenError, type PublishedPort, type Transport } from '../binding/publish.ts';
import { BindingError, bindingErrorReasons } from '../binding/errors.ts';
import { interfaceNames } from '../binding/names.ts';
import { fail } from '../errors.ts';
import { ipVersion } from '../util/ip.ts';
import type { DriverRuntime } from './context.ts';
import { bridgeOf, bridgeOptionsOf } from './embedded-options.ts';
import { portOfEndpoint } from './lookup.ts';

export const PORT_MAP_OPTION = 'com.docker.network.portmap';
const TRANSPORT_OF: Record<number, Transport> = { 6: 'tcp', 17: 'udp', 132: 'sctp' };

const isUint16 = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 65535;

/** The port map in ProgramExternalConnectivity's options, validated (`fail.invalid` otherwise). */
export function portMappings(options: Readonly<Record<string, unknown>> | null | undefined): PortMapping[] {
  const raw = options?.[PORT_MAP_OPTION];
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw)) throw fail.invalid(`${PORT_MAP_OPTION} must be a list`);
  return raw.map((entry: unknown) => {
    const bad = (why: string) => fail.invalid(`${PORT_MAP_OPTION}: ${why} in ${JSON.stringify(entry)}`);
    if (typeof entry !== 'object' || entry === null) throw bad('not an object');
    const e = entry as { Proto?: unknown; Port?: unknown; HostIP?: unknown; HostPort?: unknown; HostPortEnd?: unknown };
    const proto = typeof e.Proto === 'number' ? TRANSPORT_OF[e.Proto] : undefined;
    if (proto === undefined) throw bad('the protocol must be tcp (6), udp (17) or sctp (132)');
    if (!isUint16(e.Port) || e.Port === 0) throw bad('the container port must be 1-65535');
    const hostPort = e.HostPort ?? 0;
    const hostPortEnd = e.HostPortEnd ?? 0;
    if (!isUint16(hostPort) || !isUint16(hostPortEnd)) throw bad('host ports must be 0-65535');
    if (hostPort !== 0 && hostPortEnd !== 0 && hostPortEnd < hostPort) throw bad('the host port range is reversed');
    const hostIp = e.HostIP ?? '';
    if (typeof hostIp !== 'string') throw bad('HostIP must be a string');
    const any = hostIp === '' || hostIp === '0.0.0.0' || hostIp === '::';
    if (!any) {
      let version: number;
      try {
        version = ipVersion(hostIp);
      } catch {
        throw bad('HostIP is not an IP address');
      }
      if (version !== 4) throw bad('only IPv4 host addresses can be published on (or none: every address)');
    }
    return {
      proto,
      containerPort: e.Port,
      ...(any ? {} : { hostIp }),
      hostPort,
      hostPortEnd: hostPort === 0 ? 0 : hostPortEnd === 0 ? hostPort : hostPortEnd,
    };
  });
}

/** `-p HOST:PORT->CONTAINER:PORT/proto` for logs and messages. */
export function describePublished(p: PublishedPort): string {
  return `${p.hostIp ?? '0.0.0.0'}:${p.hostPort}->${p.containerIp}:${p.containerPort}/${p.proto}`;
}

/**
 * Publishes the endpoint's port map (nothing without a publisher, i.e. with a real Neutron, or without one).
 * A port already taken is a conflict (409) and changes nothing.
 */
export async function publishPorts(
  rt: DriverRuntime,
  endpointId: string,
  options: Readonly<Record<string, unknown>> | null | undefined,
): Promise<void> {
  const publisher = rt.publisher;
  if (publisher === undefined) return;
  const mappings = portMappings(options);
  if (mappings.length === 0) return;
  const port = await portOfEndpoint(rt, endpointId);
  if (port === undefined) throw fail.notFound(`The port doesn't exist for the identifier ${endpointId}`);
  const containerIp = port.fixed_ips.map((f) => f.ip_address).find((a) => ipVersion(a) === 4);
  if (containerIp === undefined) throw fail.invalid('Published ports need an IPv4 address on the endpoint');
  // The network's own bridge (`com.docker.network.bridge.name`) and default host address
  // (`com.docker.network.bridge.host_binding_ipv4`), as Docker's bridge driver applies them.
  const network = await rt.neutron.showNetwork(port.network_id);
  const { hostBindingIpv4 } = bridgeOptionsOf(network);
  let published: PublishedPort[];
  try {
    published = await publisher.publish({
      endpointId,
      bridge: bridgeOf(network),
      hostDevice: interfaceNames(port.id).host,
      containerIp,
      mappings:
        hostBindingIpv4 === undefined
          ? mappings
          : mappings.map((m) => (m.hostIp === undefined ? { ...m, hostIp: hostBindingIpv4 } : m)),
    });
  } catch (err) {
    if (err instanceof PortTakenError) throw fail.conflict(err.message, err);
    if (err instanceof BindingError && err.reason === bindingErrorReasons.invalidInput) throw fail.invalid(err.message);
    throw err;
  }
  rt.log.info({ endpoint: endpointId, published: published.map(describePublished) }, 'published ports');
}

/** Removes whatever the endpoint publishes (Revoke, DeleteEndpoint). Idempotent. */
export async function unpublishPorts(rt: DriverRuntime, endpointId: string): Promise<void> {
  const removed = (await rt.publisher?.unpublish(endpointId)) ?? [];
  if (removed.length > 0) {
    rt.log.info({ endpoint: endpointId, unpublished: removed.map(describePublished) }, 'unpublished ports');
  }
}
