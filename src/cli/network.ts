/**
 * `kuryr network create --neutron-net NAME|UUID [NAME]` and `kuryr network rm NAME`: the OpenStack Zun flow.
 * An existing Neutron network (a VM network) becomes a Docker network of this driver, created through the
 * Docker Engine API with the options an orchestrator passes: the network's subnets (one IPv4, one IPv6) as
 * IPAM.Config with their gateways, and `neutron.net.uuid` plus `neutron.pool.uuid` (subnets allocated from a
 * subnet pool) or `neutron.subnet.uuid` (the others), and their `.v6.` forms, on both the driver options (`-o`)
 * and the IPAM options (`--ipam-opt`). Removing the Docker network leaves the Neutron network and its subnets;
 * the driver only takes its tags off. Containers then run on it with `docker run --net NAME`, or on a
 * pre-created Neutron port with `docker run --net NAME --ip <the port's address>`.
 */
import { openBackend } from '../app.ts';
import { isUuid } from '../util/ids.ts';
import type { Config } from '../config/config.ts';
import { DockerApiError, DockerClient } from '../docker/client.ts';
import { rangeAllocationPools, samePools } from '../driver/address-range.ts';
import { fail } from '../errors.ts';
import type { NeutronApi } from '../neutron/api.ts';
import type { Network, Subnet } from '../neutron/types.ts';
import { cidrContains, isCidr, normalizeCidr, parseCidr } from '../util/ip.ts';

/** The `POST /networks/create` body (the fields used here). */
export interface DockerNetworkCreate {
  Name: string;
  CheckDuplicate: boolean;
  Driver: string;
  EnableIPv6: boolean;
  IPAM: {
    Driver: string;
    Config: { Subnet: string; Gateway?: string; IPRange?: string }[];
    Options: Record<string, string>;
  };
  Options: Record<string, string>;
}

/** A Neutron network with the subnets a Docker network can map: at most one per IP version. */
export interface NeutronNetworkView {
  network: Network;
  v4?: Subnet;
  v6?: Subnet;
  /** Subnet pool IDs (of `v4`/`v6`) that exist and are visible: only those are passed as `neutron.pool.*`. */
  visiblePools: ReadonlySet<string>;
}

export interface NetworkCreateArgs {
  /** `--neutron-net`: the Neutron network's ID or name. */
  neutronNet: string;
  /** The Docker network's name; default the Neutron network's name. */
  name?: string | undefined;
  /** `-o K=V`: more driver options. */
  options?: Readonly<Record<string, string>>;
  /** `--ipam-opt K=V`: more IPAM options. */
  ipamOptions?: Readonly<Record<string, string>>;
  /** `--ip-range CIDR` (at most one per IP version). */
  ipRanges?: readonly string[];
}

export interface NetworkCreateResult {
  id: string;
  name: string;
  /** True when a Docker network of that name already stood for this Neutron network (a retry). */
  existed: boolean;
  /** Docker's warning, and ours about `--ip-range` narrowing a Neutron subnet. */
  warnings: string[];
}

/** Option keys decided by `--neutron-net`; a user giving them too would contradict it. */
const DECIDED = /^neutron\.(net\.uuid|net\.name|pool\.|subnet\.)/;

/** `K=V` flags (`-o`, `--ipam-opt`) as a map; a key given twice keeps the last value, as docker does. */
export function parseKeyValues(values: readonly string[], flag: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of values) {
    const eq = item.indexOf('=');
    if (eq <= 0) throw fail.config(`${flag} takes KEY=VALUE, got ${JSON.stringify(item)}`);
    out[item.slice(0, eq)] = item.slice(eq + 1);
  }
  return out;
}

/**
 * The Neutron network by ID (when the text is a UUID), else by name, with its subnets. Several networks of
 * that name, no subnet, or more than one subnet of an IP version are errors that name what was found.
 */
export async function findNeutronNetwork(neutron: NeutronApi, nameOrId: string): Promise<NeutronNetworkView> {
  if (nameOrId === '') throw fail.config('--neutron-net needs a Neutron network name or ID');
  let found = isUuid(nameOrId.toLowerCase()) ? await neutron.listNetworks({ id: nameOrId.toLowerCase() }) : [];
  if (found.length === 0) found = await neutron.listNetworks({ name: nameOrId });
  if (found.length === 0) throw fail.notFound(`no Neutron network named or with ID ${JSON.stringify(nameOrId)}`);
  if (found.length > 1) {
    throw fail.conflict(
      `several Neutron networks are named ${JSON.stringify(nameOrId)} (${found.map((n) => n.id).join(', ')}): give the ID`,
    );
  }
  const network = found[0]!;
  const subnets = await neutron.listSubnets({ network_id: network.id });
  const describe = (s: Subnet) => `${s.id} ${s.cidr}${s.name ? ` (${s.name})` : ''}`;
  const view: { network: Network; v4?: Subnet; v6?: Subnet } = { network };
  for (const version of [4, 6] as const) {
    const mine = subnets.filter((s) => s.ip_version === version);
    if (mine.length > 1) {
      throw fail.conflict(
        `Neutron network ${network.name || network.id} has ${mine.length} IPv${version} subnets (${mine.map(describe).join(', ')}): a Docker network of this driver maps one IPv4 and one IPv6 subnet; make a Neutron network with one subnet per IP version`,
      );
    }
    if (mine[0] !== undefined) view[version === 4 ? 'v4' : 'v6'] = mine[0];
  }
  if (view.v4 === undefined && view.v6 === undefined) {
    throw fail.invalid(`Neutron network ${network.name || network.id} (${network.id}) has no subnet`);
  }
  const poolIds = [view.v4?.subnetpool_id, view.v6?.subnetpool_id].filter((p): p is string => !!p);
  const visible =
    poolIds.length === 0 ? [] : await neutron.listSubnetPools({ id: [...new Set(poolIds)], fields: ['id'] });
  return { ...view, visiblePools: new Set(visible.map((p) => p.id)) };
}

/**
 * The `neutron.*` options for a Neutron network: `neutron.net.uuid`, and per subnet its pool
 * (`neutron.pool.uuid`, `neutron.pool.v6.uuid`) when it was allocated from one, else the subnet itself
 * (`neutron.subnet.uuid`, `neutron.subnet.v6.uuid`).
 */
export function neutronOptions(view: NeutronNetworkView): Record<string, string> {
  const out: Record<string, string> = { 'neutron.net.uuid': view.network.id };
  for (const [subnet, infix] of [
    [view.v4, ''],
    [view.v6, 'v6.'],
  ] as const) {
    if (subnet === undefined) continue;
    const pool = subnet.subnetpool_id;
    if (pool !== null && view.visiblePools.has(pool)) out[`neutron.pool.${infix}uuid`] = pool;
    else out[`neutron.subnet.${infix}uuid`] = subnet.id;
  }
  return out;
}

/** The Docker network create body for a Neutron network, and warnings about what it implies. */
export function dockerNetworkRequest(
  view: NeutronNetworkView,
  driverName: string,
  args: Omit<NetworkCreateArgs, 'neutronNet'>,
): { body: DockerNetworkCreate; warnings: string[] } {
  const name = args.name ?? view.network.name;
  if (name === '') {
    throw fail.config(`Neutron network ${view.network.id} has no name: give the Docker network a NAME`);
  }
  const decided = neutronOptions(view);
  for (const [flag, map] of [
    ['-o', args.options ?? {}],
    ['--ipam-opt', args.ipamOptions ?? {}],
  ] as const) {
    for (const key of Object.keys(map)) {
      if (DECIDED.test(key)) throw fail.config(`${flag} ${key} is decided by --neutron-net; leave it out`);
    }
  }
  const ranges = (args.ipRanges ?? []).map((r) => {
    if (!isCidr(r)) throw fail.config(`--ip-range ${JSON.stringify(r)} is not a CIDR`);
    return normalizeCidr(r);
  });
  const warnings: string[] = [];
  const config: DockerNetworkCreate['IPAM']['Config'] = [];
  for (const subnet of [view.v4, view.v6]) {
    if (subnet === undefined) continue;
    const cidr = parseCidr(subnet.cidr);
    const mine = ranges.filter((r) => parseCidr(r).version === cidr.version);
    if (mine.length > 1) throw fail.config(`more than one IPv${cidr.version} --ip-range`);
    const range = mine[0];
    if (range !== undefined) {
      if (!cidrContains(cidr, parseCidr(range))) {
        throw fail.config(`--ip-range ${range} is not inside subnet ${subnet.cidr} (${subnet.id})`);
      }
      const narrowed = rangeAllocationPools(cidr, parseCidr(range), subnet.gateway_ip);
      if (!samePools(narrowed, subnet.allocation_pools)) {
        warnings.push(
          `the plugin narrows the allocation pools of Neutron subnet ${subnet.id} to ${range} on the first container; they stay so after kuryr network rm`,
        );
      }
    }
    config.push({
      Subnet: normalizeCidr(subnet.cidr),
      ...(subnet.gateway_ip ? { Gateway: subnet.gateway_ip } : {}),
      ...(range === undefined ? {} : { IPRange: range }),
    });
  }
  for (const r of ranges) {
    if (![view.v4, view.v6].some((s) => s !== undefined && parseCidr(s.cidr).version === parseCidr(r).version)) {
      throw fail.config(`--ip-range ${r}: the Neutron network has no IPv${parseCidr(r).version} subnet`);
    }
  }
  return {
    body: {
      Name: name,
      CheckDuplicate: true,
      Driver: driverName,
      EnableIPv6: view.v6 !== undefined,
      IPAM: { Driver: driverName, Config: config, Options: { ...args.ipamOptions, ...decided } },
      Options: { ...args.options, ...decided },
    },
    warnings,
  };
}

interface DockerNetworkInspect {
  Id: string;
  Name: string;
  Driver: string;
  Options?: Record<string, string> | null;
}

/** Creates the Docker network for an existing Neutron network; a retry finds the network it made. */
export async function createNetworkCommand(config: Config, args: NetworkCreateArgs): Promise<NetworkCreateResult> {
  const backend = await openBackend(config);
  let view: NeutronNetworkView;
  try {
    view = await findNeutronNetwork(backend.neutron, args.neutronNet);
  } finally {
    await backend.close();
  }
  const { body, warnings } = dockerNetworkRequest(view, config.driverName, args);
  const docker = new DockerClient(config.dockerHost);
  try {
    const created = await docker.post<{ Id: string; Warning?: string }>('/networks/create', body);
    if (created.Warning) warnings.unshift(created.Warning);
    return { id: created.Id, name: body.Name, existed: false, warnings };
  } catch (err) {
    if (!(err instanceof DockerApiError) || err.status !== 409) throw explainDocker(err, config);
    // The name is taken: the same Neutron network through this driver is a retry, anything else a conflict.
    const existing = await docker.get<DockerNetworkInspect>(`/networks/${encodeURIComponent(body.Name)}`);
    if (existing.Driver === config.driverName && existing.Options?.['neutron.net.uuid'] === view.network.id) {
      return { id: existing.Id, name: existing.Name, existed: true, warnings };
    }
    throw fail.conflict(
      `a Docker network named ${JSON.stringify(body.Name)} already exists (${existing.Id.slice(0, 12)}, driver ${existing.Driver}) and is not Neutron network ${view.network.id}: give another NAME`,
    );
  }
}

/** Removes a Docker network of this driver (the Neutron network and its subnets stay). */
export async function removeNetworkCommand(config: Config, name: string): Promise<string> {
  const docker = new DockerClient(config.dockerHost);
  let existing: DockerNetworkInspect;
  try {
    existing = await docker.get<DockerNetworkInspect>(`/networks/${encodeURIComponent(name)}`);
  } catch (err) {
    if (err instanceof DockerApiError && err.status === 404) throw fail.notFound(`no Docker network ${name}`);
    throw explainDocker(err, config);
  }
  if (existing.Driver !== config.driverName) {
    throw fail.config(
      `Docker network ${name} uses driver ${existing.Driver}, not ${config.driverName}: not removing it (use docker network rm, or --driver-name)`,
    );
  }
  try {
    await docker.delete(`/networks/${encodeURIComponent(existing.Id)}`);
  } catch (err) {
    throw explainDocker(err, config);
  }
  return existing.Id;
}

/** Docker's refusals become our errors (the message is Docker's); no Docker at all says where we looked. */
function explainDocker(err: unknown, config: Config): unknown {
  if (err instanceof DockerApiError) {
    if (err.status === 404) return fail.notFound(err.message);
    if (err.status === 403 || err.status === 409) return fail.conflict(err.message);
    if (err.status === 400) return fail.invalid(err.message);
    return err;
  }
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT' || code === 'ECONNREFUSED' || code === 'EACCES') {
    return fail.config(
      `cannot reach Docker at ${config.dockerHost ?? process.env.DOCKER_HOST ?? 'unix:///var/run/docker.sock'} (${code}): give --docker-host`,
    );
  }
  return err;
}
