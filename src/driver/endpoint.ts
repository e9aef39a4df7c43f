/**
 * `NetworkDriver.CreateEndpoint`, `DeleteEndpoint`, `EndpointOperInfo`: a Docker endpoint is the Neutron port
 * holding its addresses, bound to this host and tagged with the endpoint ID; its host side is a veth pair.
 *
 * Unlike the original (whose dual-stack endpoints lose their tags): a dual-stack endpoint is one port from the start
 * (ipam-addresses.ts), so it never loses its tags; CreateEndpoint is idempotent and undoes the port update when the host
 * binding fails; DeleteEndpoint of an endpoint already gone succeeds.
 */
import { fail } from '../errors.ts';
import type { Port, PortUpdate } from '../neutron/types.ts';
import type { CreateEndpointRequest } from './requests.ts';
import { splitAddressWithPrefix } from '../util/ip.ts';
import { type DriverRuntime, errorMessage } from './context.ts';
import { portOfEndpoint, requireNetworkOfDocker } from './lookup.ts';
import { createExposedGroup, deleteExposedGroups, type ExposedPort, exposedPorts, groupName } from './connectivity.ts';
import { faultPoint } from './faults.ts';
import { lockKeys } from './locks.ts';
import { waitForActivePort } from './vif-plugging.ts';
import { endpointPortName, isUntaggedLeftover } from './marks.ts';
import { bindOptions } from './embedded-options.ts';
import { mtuOf } from './network.ts';
import { unpublishPorts } from './published-ports.ts';
import { DEVICE_OWNER } from './tags.ts';

/** The request, typed by its schema (requests.ts); Options holds the exposed ports, among others. */
export type CreateEndpointInput = CreateEndpointRequest;

export interface CreateEndpointResult {
  Interface: { MacAddress?: string };
}

/** `NetworkDriver.CreateEndpoint`. */
export async function createEndpoint(rt: DriverRuntime, req: CreateEndpointInput): Promise<CreateEndpointResult> {
  return rt.locks.run(lockKeys.endpoint(req.EndpointID), async () => {
    rt.endedEndpoints.delete(req.EndpointID);
    const network = await requireNetworkOfDocker(rt, req.NetworkID);
    const iface = req.Interface ?? {};
    const addresses = [iface.Address, iface.AddressIPv6]
      .filter((a): a is string => a !== undefined && a !== '')
      .map((a) => splitAddressWithPrefix(a).address);
    if (addresses.length === 0) throw fail.invalid('Interface address v4 or v6 not provided.');
    const mac = iface.MacAddress ? iface.MacAddress.toLowerCase() : undefined;

    // Who holds the addresses: usually the port RequestAddress made moments ago, which the cache answers.
    const holders = await rt.neutron.listPorts({
      network_id: network.id,
      fixed_ips: addresses.map((a) => `ip_address=${a}`),
    });
    if (holders.length > 1) {
      throw fail.conflict(
        `Multiple ports exist for the addresses ${addresses.join(' and ')}: ${holders.map((p) => p.id).join(', ')}`,
      );
    }
    // Exposed ports are attached while the port is bound, never to a wired port (see connectivity.ts).
    const exposed = rt.settings.processExternalConnectivity ? exposedPorts(req.Options) : [];
    const before = holders[0];
    let port: Port;
    if (before === undefined) {
      // Addresses not from our IPAM (e.g. Docker's default IPAM): the port is made here.
      port = await rt.neutron.createPort({
        name: endpointPortName(req.EndpointID),
        network_id: network.id,
        admin_state_up: true,
        device_owner: DEVICE_OWNER,
        device_id: req.EndpointID,
        'binding:host_id': rt.settings.hostId,
        ...(mac === undefined ? {} : { mac_address: mac }),
        fixed_ips: addresses.map((ip_address) => ({ ip_address })),
        ...rt.marks.endpointPortFields(req.EndpointID),
      });
      port = await rt.marks.markEndpointPort(rt.neutron, port, req.EndpointID, true);
      if (exposed.length > 0) {
        const made = port;
        try {
          const group = await createExposedGroup(rt, made.id, exposed);
          port = await rt.neutron.updatePort(made.id, { security_groups: [group.id, ...made.security_groups] });
        } catch (err) {
          await rt.neutron.deletePort(made.id).catch(() => undefined);
          throw err;
        }
      }
    } else {
      if (before.device_id !== '' && before.device_id !== req.EndpointID) {
        throw fail.conflict(
          `Neutron port ${before.id} holding ${addresses.join(', ')} is in use by device ${before.device_id}`,
        );
      }
      const group = exposed.length > 0 ? await exposedGroupFor(rt, before, exposed) : undefined;
      try {
        port = await claimPort(rt, before, req.EndpointID, mac, group?.id);
      } catch (err) {
        if (group !== undefined) await deleteExposedGroups(rt, [group]).catch(() => undefined);
        throw err;
      }
    }

    faultPoint('create-endpoint:before-bind');
    try {
      await rt.binder.bind({ port, mtu: mtuOf(network), ...bindOptions(network) });
    } catch (err) {
      rt.deadline?.enterRollback();
      await undoClaim(rt, before, port).catch((undoErr: unknown) =>
        rt.log.error({ err: errorMessage(undoErr), port: port.id }, 'rollback of CreateEndpoint failed'),
      );
      throw err;
    }
    try {
      await waitForActivePort(rt, port);
    } catch (err) {
      rt.deadline?.enterRollback();
      await rt.binder
        .unbind(port)
        .then(() => undoClaim(rt, before, port))
        .catch((undoErr: unknown) =>
          rt.log.error({ err: errorMessage(undoErr), port: port.id }, 'rollback of CreateEndpoint failed'),
        );
      throw err;
    }
    return mac === undefined ? { Interface: { MacAddress: port.mac_address } } : { Interface: {} };
  });
}

/** One PUT with every change the port needs (host, owner, device, MAC, admin state), then the endpoint tags. */
async function claimPort(
  rt: DriverRuntime,
  port: Port,
  endpointId: string,
  mac: string | undefined,
  exposedGroup: string | undefined,
): Promise<Port> {
  const update: PortUpdate = {};
  if (exposedGroup !== undefined && !port.security_groups.includes(exposedGroup)) {
    update.security_groups = [exposedGroup, ...port.security_groups];
  }
  if (port['binding:host_id'] !== rt.settings.hostId) {
    update['binding:host_id'] = rt.settings.hostId;
    update.device_owner = DEVICE_OWNER;
  }
  if (port.device_id !== endpointId) update.device_id = endpointId;
  if (mac !== undefined && port.mac_address.toLowerCase() !== mac) update.mac_address = mac;
  if (!port.admin_state_up) update.admin_state_up = true;
  Object.assign(update, rt.marks.claimChanges(port, endpointId));
  const updated = Object.keys(update).length > 0 ? await rt.neutron.updatePort(port.id, update) : port;
  faultPoint('create-endpoint:before-tags');
  // A port our IPAM made gets its `compute:kuryr` mark here, with the endpoint's, in one update.
  return rt.marks.markEndpointPort(rt.neutron, updated, endpointId, isUntaggedLeftover(port));
}

/** The port's exposed-ports group: found again (a retried request) or created. */
async function exposedGroupFor(rt: DriverRuntime, port: Port, exposed: readonly ExposedPort[]) {
  const [existing] = await rt.neutron.listSecurityGroups({ name: groupName(port.id) });
  return existing ?? (await createExposedGroup(rt, port.id, exposed));
}

/** Puts a port back as it was before CreateEndpoint (or deletes the one it created). */
async function undoClaim(rt: DriverRuntime, before: Port | undefined, after: Port): Promise<void> {
  if (before === undefined) {
    await rt.neutron.deletePort(after.id);
    return;
  }
  await rt.neutron.updatePort(after.id, {
    'binding:host_id': before['binding:host_id'],
    device_owner: before.device_owner,
    device_id: before.device_id,
    mac_address: before.mac_address,
    security_groups: before.security_groups,
    ...(after.name === before.name ? {} : { name: before.name }),
  });
  await deleteExposedGroups(rt, await rt.neutron.listSecurityGroups({ name: groupName(after.id) }));
  if (after.tags.length !== before.tags.length) await rt.neutron.replaceTags('ports', after.id, before.tags);
}

/**
 * `NetworkDriver.DeleteEndpoint`: unplugs the host side; nothing is written to Neutron. The endpoint is noted as
 * ended, so that ReleaseAddress, which libnetwork sends next, deletes the port (or hands a taken-over one back)
 * although it still carries the endpoint's marks. Updating a just unplugged port would cost a round trip, and
 * meets the Zed linuxbridge agent's failing ebtables-nft rule delete. Should the plugin restart in between, the
 * port stays to DeleteNetwork's leftover removal or `kuryr gc` (Docker no longer knows the endpoint).
 */
export async function deleteEndpoint(rt: DriverRuntime, endpointId: string): Promise<void> {
  await rt.locks.run(lockKeys.endpoint(endpointId), async () => {
    await unpublishPorts(rt, endpointId); // when Docker never revoked them
    const port = await portOfEndpoint(rt, endpointId);
    if (port === undefined) return;
    await rt.binder.unbind(port);
    faultPoint('delete-endpoint:before-untag');
    rt.endedEndpoints.add(endpointId);
  });
}

/**
 * How old the port status EndpointOperInfo gives may be, on a real Neutron: dockerd asks twice per `docker run`
 * (after CreateEndpoint and after Join, within a second) and uses the answer's port-map keys, not the status; the
 * status given then is the port as CreateEndpoint's own write returned it, later Neutron's answer of the moment.
 */
export const STATUS_MAX_AGE_MS = 5_000;

/**
 * `NetworkDriver.EndpointOperInfo`: the Neutron port status. Neutron's agent wires the port and changes its status:
 * the answer is the port as Neutron returned it at most `STATUS_MAX_AGE_MS` ago, else asked of Neutron. With the
 * embedded backend the plugin is that agent (the store makes a bound port ACTIVE as it is bound), so the port as
 * its own writes left it, which the cache keeps, is the answer at any age, as Docker's bridge driver answers from
 * memory.
 */
export async function endpointOperInfo(
  rt: DriverRuntime,
  endpointId: string,
): Promise<{ Value: Record<string, string> }> {
  const port = await portOfEndpoint(rt, endpointId, rt.agent === undefined ? { maxAgeMs: STATUS_MAX_AGE_MS } : {});
  return { Value: port === undefined ? {} : { status: port.status, port_id: port.id } };
}
