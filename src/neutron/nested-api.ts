/**
 * The Neutron calls only the nested port drivers make (driver/port-drivers): a port update guarded by the
 * `revision-if-match` extension, and the `trunk` extension's trunks and subports. Only a real Neutron has them
 * (http/client.ts); the embedded store serves containers on the host only.
 */
import type { ListFilter } from './api.ts';
import type { Port, PortUpdate } from './types.ts';

/** One subport of a trunk (`sub_ports` entry). */
export interface SubPort {
  port_id: string;
  segmentation_type: string;
  segmentation_id: number;
}

export interface Trunk {
  id: string;
  name: string;
  port_id: string;
  status: string;
  sub_ports: SubPort[];
  revision_number: number;
}

export interface NestedNeutronApi {
  /**
   * `PUT /v2.0/ports/{id}` with `If-Match: revision_number=<revision>`: Neutron answers 412
   * (`RevisionNumberConstraintFailed`) when the port changed since it was read at that revision.
   */
  updatePortIfRevision(id: string, body: PortUpdate, revision: number): Promise<Port>;
  /** `GET /v2.0/trunks` */
  listTrunks(filter?: ListFilter): Promise<Trunk[]>;
  /** `GET /v2.0/trunks/{id}` */
  showTrunk(id: string): Promise<Trunk>;
  /** `PUT /v2.0/trunks/{id}/add_subports`: 409 when the port or the segmentation ID is already taken. */
  addSubports(trunkId: string, subports: readonly SubPort[]): Promise<Trunk>;
  /** `PUT /v2.0/trunks/{id}/remove_subports`: 404 when one of the ports is not a subport of the trunk. */
  removeSubports(trunkId: string, portIds: readonly string[]): Promise<Trunk>;
}

/** True when `err` is Neutron's 412: the resource changed since the revision the update was based on. */
export function isRevisionMismatch(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { status?: unknown }).status === 412;
}

/** The nested calls of a Neutron API object, when it has them (the HTTP client does, the embedded store not). */
export function nestedApiOf(neutron: object): NestedNeutronApi | undefined {
  const api = neutron as Partial<NestedNeutronApi>;
  return typeof api.updatePortIfRevision === 'function' &&
    typeof api.listTrunks === 'function' &&
    typeof api.showTrunk === 'function' &&
    typeof api.addSubports === 'function' &&
    typeof api.removeSubports === 'function'
    ? (api as NestedNeutronApi)
    : undefined;
}
