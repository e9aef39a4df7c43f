/**
 * `NeutronApi`: the subset of the Neutron v2.0 API that the driver uses.
 *
 * Two implementations: `http/` (a real Neutron) and `embedded/` (SQLite, the default). The same contract
 * suite (test/contract) runs against both, so the embedded store cannot drift from Neutron.
 *
 * Every method maps to exactly one Neutron HTTP call; errors are `NeutronError` (neutron/errors.ts).
 */
import type { Deadline } from '../util/deadline.ts';
import type {
  Extension,
  Network,
  NetworkCreate,
  NetworkUpdate,
  Port,
  PortCreate,
  PortUpdate,
  SecurityGroup,
  SecurityGroupCreate,
  SecurityGroupRule,
  SecurityGroupRuleCreate,
  Subnet,
  SubnetCreate,
  SubnetPool,
  SubnetPoolCreate,
  SubnetPoolUpdate,
  SubnetUpdate,
  TaggedResource,
} from './types.ts';

/** A scalar filter value, written as Neutron's query string would carry it. */
export type FilterValue = string | number | boolean;

/**
 * List filters with Neutron's query-string semantics:
 * - `attr: v` exact match; `attr: [a, b]` matches either (OR within a key); keys combine with AND.
 * - `tags`, `tags-any`, `not-tags`, `not-tags-any`: lists of tags (Neutron's comma-separated forms).
 * - `fixed_ips` (ports): entries `subnet_id=<id>` / `ip_address=<ip>`. A port matches when some fixed IP has
 *   one of the given addresses and some fixed IP is in one of the given subnets (evaluated independently).
 * - `fields`: attributes to return (the rest may be omitted; `id` is always returned).
 * An `undefined` value is ignored (no filter), never "match empty".
 */
export type ListFilter = Readonly<Record<string, FilterValue | readonly FilterValue[] | undefined>>;

export interface NeutronApi {
  /** `GET /v2.0/extensions` */
  listExtensions(): Promise<Extension[]>;

  listNetworks(filter?: ListFilter): Promise<Network[]>;
  showNetwork(id: string): Promise<Network>;
  createNetwork(body: NetworkCreate): Promise<Network>;
  updateNetwork(id: string, body: NetworkUpdate): Promise<Network>;
  /** 409 `NetworkInUse` while ports other than network-owned ones exist; deletes its subnets. */
  deleteNetwork(id: string): Promise<void>;

  listSubnets(filter?: ListFilter): Promise<Subnet[]>;
  showSubnet(id: string): Promise<Subnet>;
  /** Bulk create (`{"subnets": [...]}`): atomic, all or nothing. */
  createSubnets(bodies: readonly SubnetCreate[]): Promise<Subnet[]>;
  updateSubnet(id: string, body: SubnetUpdate): Promise<Subnet>;
  /** 409 `SubnetInUse` while non-network-owned ports hold addresses in it. */
  deleteSubnet(id: string): Promise<void>;

  listSubnetPools(filter?: ListFilter): Promise<SubnetPool[]>;
  showSubnetPool(id: string): Promise<SubnetPool>;
  createSubnetPool(body: SubnetPoolCreate): Promise<SubnetPool>;
  updateSubnetPool(id: string, body: SubnetPoolUpdate): Promise<SubnetPool>;
  /** 400 `SubnetPoolDeleteError` (Zed; `isPoolInUse` also takes the documented 409) while subnets use it. */
  deleteSubnetPool(id: string): Promise<void>;

  listPorts(filter?: ListFilter): Promise<Port[]>;
  showPort(id: string): Promise<Port>;
  createPort(body: PortCreate): Promise<Port>;
  updatePort(id: string, body: PortUpdate): Promise<Port>;
  deletePort(id: string): Promise<void>;

  listSecurityGroups(filter?: ListFilter): Promise<SecurityGroup[]>;
  createSecurityGroup(body: SecurityGroupCreate): Promise<SecurityGroup>;
  deleteSecurityGroup(id: string): Promise<void>;
  /** Bulk create (`{"security_group_rules": [...]}`): atomic. */
  createSecurityGroupRules(bodies: readonly SecurityGroupRuleCreate[]): Promise<SecurityGroupRule[]>;

  /** `PUT /v2.0/<resource>/<id>/tags` with the full list; returns the stored list. */
  replaceTags(resource: TaggedResource, id: string, tags: readonly string[]): Promise<string[]>;
  /** `PUT /v2.0/<resource>/<id>/tags/<tag>`: idempotent. */
  addTag(resource: TaggedResource, id: string, tag: string): Promise<void>;
  /** `DELETE /v2.0/<resource>/<id>/tags/<tag>`: 404 `TagNotFound` if absent. */
  removeTag(resource: TaggedResource, id: string, tag: string): Promise<void>;
}

/** An implementation whose calls can be bound to a deadline (the HTTP client, and the decorators around it). */
export interface DeadlineBinding {
  /** The same API sharing all state, whose calls end by `deadline` (attempts, retries and their sleeps). */
  withDeadline(deadline: Deadline): NeutronApi;
}

/** `api` with its calls bound to `deadline`; an implementation with nothing to abort (the embedded store) as is. */
export function withDeadline(api: NeutronApi, deadline: Deadline): NeutronApi {
  const binding = api as Partial<DeadlineBinding>;
  return typeof binding.withDeadline === 'function' ? binding.withDeadline(deadline) : api;
}
