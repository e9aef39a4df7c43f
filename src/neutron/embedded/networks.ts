/** Networks: create with Neutron's defaults, update, and delete with the network-owned-port cascade. */
import { neutronErrors } from '../errors.ts';
import type { Network, NetworkCreate, NetworkUpdate } from '../types.ts';
import { Assignments, type StoreContext, selectRow, touch } from './context.ts';
import { networkFromRow } from './rows.ts';
import { asBody, type Body, checkAttributes, newId, optBoolean, optInteger, optString, timestamp } from './validate.ts';

/** Device owners starting with this are network-owned (DHCP, metadata, ...): deleted with their network/subnet. */
export const NETWORK_OWNER_PREFIX = 'network:';

const MTU_MIN = 68;
const MTU_MAX = 65535;
const UPDATABLE = ['name', 'description', 'admin_state_up', 'shared', 'mtu'];

function projectOf(ctx: StoreContext, b: Body): string {
  return optString(b, 'project_id') ?? optString(b, 'tenant_id') ?? ctx.projectId;
}

/** Read one network (404 NetworkNotFound). */
export function showNetwork(ctx: StoreContext, id: string): Network {
  return networkFromRow(selectRow(ctx, 'networks', id));
}

/**
 * `POST /v2.0/networks`: admin up, not shared, ACTIVE, MTU 1500 unless given. Like Neutron's, the answer also
 * has `is_default: false` (the auto-allocated-topology attribute), which later reads of the network lack.
 */
export function createNetwork(ctx: StoreContext, body: NetworkCreate): Network & { is_default: boolean } {
  const b = asBody(body, 'networks');
  checkAttributes(b, [...UPDATABLE, 'project_id', 'tenant_id']);
  const id = newId();
  const now = timestamp();
  ctx.db.run(
    `INSERT INTO networks (id, project_id, name, description, admin_state_up, shared, mtu, created_at, updated_at)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    [
      id,
      projectOf(ctx, b),
      optString(b, 'name') ?? '',
      optString(b, 'description') ?? '',
      (optBoolean(b, 'admin_state_up') ?? true) ? 1 : 0,
      (optBoolean(b, 'shared') ?? false) ? 1 : 0,
      optInteger(b, 'mtu', MTU_MIN, MTU_MAX) ?? 1500,
      now,
      now,
    ],
  );
  return { ...showNetwork(ctx, id), is_default: false };
}

/** `PUT /v2.0/networks/<id>`. */
export function updateNetwork(ctx: StoreContext, id: string, body: NetworkUpdate): Network {
  const b = asBody(body, 'networks');
  checkAttributes(b, UPDATABLE);
  showNetwork(ctx, id);
  new Assignments()
    .set('name', optString(b, 'name'))
    .set('description', optString(b, 'description'))
    .set('admin_state_up', optBoolean(b, 'admin_state_up'))
    .set('shared', optBoolean(b, 'shared'))
    .set('mtu', optInteger(b, 'mtu', MTU_MIN, MTU_MAX))
    .apply(ctx, 'networks', id);
  touch(ctx, 'networks', id);
  return showNetwork(ctx, id);
}

/**
 * `DELETE /v2.0/networks/<id>`: 409 NetworkInUse while ports other than network-owned ones exist; otherwise
 * the network-owned ports, the subnets and the network go.
 */
export function deleteNetwork(ctx: StoreContext, id: string): void {
  showNetwork(ctx, id);
  const inUse = ctx.db.get(
    `SELECT 1 FROM ports WHERE network_id = ? AND substr(device_owner, 1, ${NETWORK_OWNER_PREFIX.length}) <> ?`,
    [id, NETWORK_OWNER_PREFIX],
  );
  if (inUse) throw neutronErrors.networkInUse(id);
  ctx.db.run('DELETE FROM ports WHERE network_id = ?', [id]);
  ctx.db.run('DELETE FROM subnets WHERE network_id = ?', [id]);
  ctx.db.run('DELETE FROM networks WHERE id = ?', [id]);
}
