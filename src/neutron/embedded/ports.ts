/**
 * Ports: MAC generation and uniqueness per network, fixed IPs (ip-allocation.ts), `binding:*`, port security
 * with the default security group, allowed address pairs. `status` is computed (rows.ts): the embedded plugin
 * wires a bound port synchronously, so a port is ACTIVE while bound and admin-up.
 */
import { randomBytes } from '../../util/random.ts';
import { neutronErrors } from '../errors.ts';
import type { AllowedAddressPair, Port, PortCreate, PortUpdate } from '../types.ts';
import { isCidr, isIp } from '../../util/ip.ts';
import { Assignments, requireExists, type StoreContext, selectRow, touch } from './context.ts';
import { applyFixedIps, planFixedIps } from './ip-allocation.ts';
import { NETWORK_OWNER_PREFIX } from './networks.ts';
import { portFromRow } from './rows.ts';
import { ensureDefaultSecurityGroup } from './security-groups.ts';
import {
  asBody,
  type Body,
  checkArray,
  checkMac,
  checkObject,
  checkString,
  has,
  newId,
  optBoolean,
  optString,
  required,
  timestamp,
} from './validate.ts';

const UPDATABLE = [
  'name',
  'description',
  'admin_state_up',
  'mac_address',
  'fixed_ips',
  'device_id',
  'device_owner',
  'security_groups',
  'allowed_address_pairs',
  'port_security_enabled',
  'binding:host_id',
  'binding:vnic_type',
  'binding:profile',
];
const VNIC_TYPES = [
  'normal',
  'direct',
  'direct-physical',
  'macvtap',
  'baremetal',
  'virtio-forwarder',
  'smart-nic',
  'vdpa',
  'remote-managed',
];
/** Neutron's default `base_mac`. */
const MAC_PREFIX = 'fa:16:3e';
const MAC_RETRIES = 16;
const MAX_ADDRESS_PAIRS = 10;

/** Read one port (404 PortNotFound). */
export function showPort(ctx: StoreContext, id: string): Port {
  return portFromRow(selectRow(ctx, 'ports', id), ctx.vifType);
}

/** MAC uniqueness per network ignores case, as Neutron's does (`fa:16:3e:aa:bb:01` is `FA:16:3E:AA:BB:01`). */
function macInUse(ctx: StoreContext, networkId: string, mac: string): boolean {
  return (
    ctx.db.get('SELECT 1 FROM ports WHERE network_id = ? AND mac_address = ? COLLATE NOCASE', [networkId, mac]) !==
    undefined
  );
}

function generateMac(ctx: StoreContext, networkId: string): string {
  for (let i = 0; i < MAC_RETRIES; i++) {
    const tail = [...randomBytes(3)].map((byte) => byte.toString(16).padStart(2, '0')).join(':');
    const mac = `${MAC_PREFIX}:${tail}`;
    if (!macInUse(ctx, networkId, mac)) return mac;
  }
  throw neutronErrors.macGenerationFailure(networkId);
}

function optVnicType(b: Body): string | undefined {
  const vnic = optString(b, 'binding:vnic_type');
  if (vnic !== undefined && !VNIC_TYPES.includes(vnic)) {
    throw neutronErrors.invalidAttribute('binding:vnic_type', `'${vnic}' is not in [${VNIC_TYPES.join(', ')}]`);
  }
  return vnic;
}

function optProfile(b: Body): string | undefined {
  if (!has(b, 'binding:profile')) return undefined;
  return JSON.stringify(b['binding:profile'] === null ? {} : checkObject(b['binding:profile'], 'binding:profile'));
}

/** Requested security group IDs (deduplicated, each must exist), or undefined when not given. */
function optSecurityGroups(ctx: StoreContext, b: Body): string[] | undefined {
  if (!has(b, 'security_groups')) return undefined;
  const ids = checkArray(b.security_groups, 'security_groups').map((id) => checkString(id, 'security_groups'));
  for (const id of ids) requireExists(ctx, 'security-groups', id);
  return [...new Set(ids)];
}

function parseAddressPairs(value: unknown, portMac: string): AllowedAddressPair[] {
  const pairs = checkArray(value, 'allowed_address_pairs').map((item) => {
    const obj = checkObject(item, 'allowed_address_pairs');
    const ip = obj.ip_address;
    if (typeof ip !== 'string' || !(isIp(ip) || isCidr(ip))) {
      throw neutronErrors.invalidAttribute(
        'allowed_address_pairs',
        `'${String(ip)}' is not a valid IP address or subnet`,
      );
    }
    const mac =
      obj.mac_address === undefined || obj.mac_address === null
        ? portMac
        : checkMac(obj.mac_address, 'allowed_address_pairs');
    return { ip_address: ip, mac_address: mac };
  });
  if (pairs.length > MAX_ADDRESS_PAIRS) {
    throw neutronErrors.badResourceRequest(
      'ports',
      `The number of allowed address pair exceeds the maximum ${MAX_ADDRESS_PAIRS}`,
    );
  }
  pairs.forEach((p, i) => {
    if (pairs.findIndex((q) => q.ip_address === p.ip_address && q.mac_address === p.mac_address) !== i) {
      throw neutronErrors.duplicateAddressPairInRequest(p.mac_address, p.ip_address);
    }
  });
  return pairs;
}

function setSecurityGroups(ctx: StoreContext, portId: string, ids: readonly string[]): void {
  ctx.db.run('DELETE FROM port_security_groups WHERE port_id = ?', [portId]);
  for (const id of ids) {
    ctx.db.run('INSERT INTO port_security_groups (port_id, security_group_id) VALUES (?, ?)', [portId, id]);
  }
}

/** `POST /v2.0/ports`. */
export function createPort(ctx: StoreContext, body: PortCreate): Port {
  const b = asBody(body, 'ports');
  const unknown = Object.keys(b).filter(
    (k) => b[k] !== undefined && ![...UPDATABLE, 'network_id', 'project_id', 'tenant_id'].includes(k),
  );
  if (unknown.length > 0) throw neutronErrors.unrecognizedAttributes(unknown);
  const networkId = requireExists(ctx, 'networks', required(b, 'network_id'));
  const projectId = optString(b, 'project_id') ?? optString(b, 'tenant_id') ?? ctx.projectId;
  let mac: string;
  if (has(b, 'mac_address')) {
    mac = checkMac(b.mac_address, 'mac_address');
    if (macInUse(ctx, networkId, mac)) throw neutronErrors.macInUse(networkId, mac);
  } else {
    mac = generateMac(ctx, networkId);
  }
  const deviceOwner = optString(b, 'device_owner') ?? '';
  const portSecurity = optBoolean(b, 'port_security_enabled') ?? true;
  const pairs = has(b, 'allowed_address_pairs') ? parseAddressPairs(b.allowed_address_pairs, mac) : [];
  if (pairs.length > 0 && !portSecurity) throw neutronErrors.addressPairAndPortSecurityRequired();
  let groups = optSecurityGroups(ctx, b);
  if (!portSecurity && groups && groups.length > 0) throw neutronErrors.portSecurityAndIpRequiredForSecurityGroups();
  // Network-owned ports are trusted: Neutron applies no security groups to them.
  if (deviceOwner.startsWith(NETWORK_OWNER_PREFIX) || !portSecurity) groups = [];
  groups ??= [ensureDefaultSecurityGroup(ctx, projectId)];
  const plan = planFixedIps(ctx, networkId, b.fixed_ips);
  const id = newId();
  const now = timestamp();
  ctx.db.run(
    `INSERT INTO ports (id, project_id, network_id, name, description, admin_state_up, mac_address, device_id,
       device_owner, port_security_enabled, allowed_address_pairs, host_id, vnic_type, profile, created_at, updated_at)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    [
      id,
      projectId,
      networkId,
      optString(b, 'name') ?? '',
      optString(b, 'description') ?? '',
      (optBoolean(b, 'admin_state_up') ?? true) ? 1 : 0,
      mac,
      optString(b, 'device_id') ?? '',
      deviceOwner,
      portSecurity ? 1 : 0,
      JSON.stringify(pairs),
      optString(b, 'binding:host_id') ?? '',
      optVnicType(b) ?? 'normal',
      optProfile(b) ?? '{}',
      now,
      now,
    ],
  );
  applyFixedIps(ctx, id, plan);
  setSecurityGroups(ctx, id, groups);
  return showPort(ctx, id);
}

/**
 * `PUT /v2.0/ports/<id>`: `fixed_ips`, `security_groups` and `allowed_address_pairs` replace the whole list;
 * changing the MAC of a bound port is 409 PortBound.
 */
export function updatePort(ctx: StoreContext, id: string, body: PortUpdate): Port {
  const b = asBody(body, 'ports');
  const unknown = Object.keys(b).filter((k) => b[k] !== undefined && !UPDATABLE.includes(k));
  if (unknown.length > 0) throw neutronErrors.unrecognizedAttributes(unknown);
  const port = showPort(ctx, id);
  let mac: string | undefined;
  if (has(b, 'mac_address')) {
    mac = checkMac(b.mac_address, 'mac_address');
    if (mac !== port.mac_address) {
      if (port['binding:host_id'] !== '') {
        throw neutronErrors.portBound(id, port['binding:vif_type'], port.mac_address, mac);
      }
      if (macInUse(ctx, port.network_id, mac)) throw neutronErrors.macInUse(port.network_id, mac);
    }
  }
  const portSecurity = optBoolean(b, 'port_security_enabled') ?? port.port_security_enabled;
  const groups = optSecurityGroups(ctx, b);
  if (!portSecurity) {
    if (groups && groups.length > 0) throw neutronErrors.portSecurityAndIpRequiredForSecurityGroups();
    if (!groups && port.security_groups.length > 0) throw neutronErrors.portSecurityPortHasSecurityGroup();
  }
  const pairs = has(b, 'allowed_address_pairs')
    ? parseAddressPairs(b.allowed_address_pairs, mac ?? port.mac_address)
    : undefined;
  if (!portSecurity && (pairs ?? port.allowed_address_pairs).length > 0) {
    throw neutronErrors.addressPairAndPortSecurityRequired();
  }
  if (has(b, 'fixed_ips')) applyFixedIps(ctx, id, planFixedIps(ctx, port.network_id, b.fixed_ips, port.fixed_ips));
  if (groups) setSecurityGroups(ctx, id, groups);
  new Assignments()
    .set('name', optString(b, 'name'))
    .set('description', optString(b, 'description'))
    .set('admin_state_up', optBoolean(b, 'admin_state_up'))
    .set('mac_address', mac)
    .set('device_id', optString(b, 'device_id'))
    .set('device_owner', optString(b, 'device_owner'))
    .set('port_security_enabled', optBoolean(b, 'port_security_enabled'))
    .set('allowed_address_pairs', pairs && JSON.stringify(pairs))
    .set('host_id', optString(b, 'binding:host_id'))
    .set('vnic_type', optVnicType(b))
    .set('profile', optProfile(b))
    .apply(ctx, 'ports', id);
  touch(ctx, 'ports', id);
  return showPort(ctx, id);
}

/** `DELETE /v2.0/ports/<id>`: its addresses, security-group links and tags go with it. */
export function deletePort(ctx: StoreContext, id: string): void {
  showPort(ctx, id);
  ctx.db.run('DELETE FROM ports WHERE id = ?', [id]);
}
