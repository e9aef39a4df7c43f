/**
 * `EmbeddedNeutron`: the `NeutronApi` backed by a SQLite file, with Neutron's semantics for the subset
 * kuryr uses. Every API call is one transaction (`BEGIN IMMEDIATE` for writes): a failed call changes
 * nothing and a crash (even `kill -9`) never leaves half a call. Methods are async to match the interface;
 * the work inside is synchronous, so calls on one instance never interleave.
 */
import type { ListFilter, NeutronApi } from '../api.ts';
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
} from '../types.ts';
import { type StoreContext, selectRows } from './context.ts';
import { type Database, openDatabase } from './database.ts';
import * as networks from './networks.ts';
import * as ports from './ports.ts';
import { networkFromRow, portFromRow, subnetFromRow, subnetPoolFromRow } from './rows.ts';
import * as securityGroups from './security-groups.ts';
import * as subnetpools from './subnetpools.ts';
import * as subnets from './subnets.ts';
import * as tags from './tags.ts';

/** Options of `openEmbeddedNeutron`. */
export interface EmbeddedNeutronOptions {
  /** SQLite file (created if missing), or `':memory:'` for tests. */
  path: string;
  /** Project owning what the store creates (Neutron: the token's project). Default `DEFAULT_PROJECT_ID`. */
  projectId?: string;
  /** `binding:vif_type` of a port bound to a host. Default `'bridge'`. */
  vifType?: string;
}

/** The project ID used when none is configured (fixed, so it stays the same across restarts). */
export const DEFAULT_PROJECT_ID = '5c7d2b1e0f3a4e6b9d8c7a6b5e4f3d2c';

const EXTENSIONS: readonly Extension[] = [
  {
    alias: 'subnet_allocation',
    name: 'Subnet Allocation',
    description: 'Enables allocation of subnets from a subnet pool',
  },
  {
    alias: 'standard-attr-tag',
    name: 'Tag support for resources with standard attribute',
    description: 'Enables to set tag on resources with standard attribute.',
  },
  { alias: 'security-group', name: 'security-group', description: 'The security groups extension.' },
  {
    alias: 'binding',
    name: 'Port Binding',
    description: 'Expose port bindings of a virtual port to external application',
  },
  { alias: 'net-mtu', name: 'Network MTU', description: 'Provides MTU attribute for a network resource.' },
  { alias: 'port-security', name: 'Port Security', description: 'Provides port security' },
  { alias: 'allowed-address-pairs', name: 'Allowed Address Pairs', description: 'Provides allowed address pairs' },
  {
    alias: 'empty-string-filtering',
    name: 'Empty String Filtering Extension',
    description: 'Allow filtering by attributes with empty string value',
  },
  {
    alias: 'filter-validation',
    name: 'Filter parameters validation',
    description: 'Provides validation on filter parameters.',
  },
];

/** The embedded, durable Neutron. Create with `openEmbeddedNeutron`; `close()` when done. */
export class EmbeddedNeutron implements NeutronApi {
  private readonly db: Database;
  private readonly ctx: StoreContext;

  constructor(db: Database, options: { projectId: string; vifType: string }) {
    this.db = db;
    this.ctx = { db, projectId: options.projectId, vifType: options.vifType };
  }

  /** Close the database (idempotent). */
  async close(): Promise<void> {
    this.db.close();
  }

  private async write<T>(fn: (ctx: StoreContext) => T): Promise<T> {
    return this.db.write(() => fn(this.ctx));
  }

  private async read<T>(fn: (ctx: StoreContext) => T): Promise<T> {
    return this.db.read(() => fn(this.ctx));
  }

  async listExtensions(): Promise<Extension[]> {
    return EXTENSIONS.map((e) => ({ ...e }));
  }

  async listNetworks(filter?: ListFilter): Promise<Network[]> {
    return this.read((ctx) => selectRows(ctx, 'networks', filter).map(networkFromRow));
  }
  async showNetwork(id: string): Promise<Network> {
    return this.read((ctx) => networks.showNetwork(ctx, id));
  }
  async createNetwork(body: NetworkCreate): Promise<Network> {
    return this.write((ctx) => networks.createNetwork(ctx, body));
  }
  async updateNetwork(id: string, body: NetworkUpdate): Promise<Network> {
    return this.write((ctx) => networks.updateNetwork(ctx, id, body));
  }
  async deleteNetwork(id: string): Promise<void> {
    return this.write((ctx) => networks.deleteNetwork(ctx, id));
  }

  async listSubnets(filter?: ListFilter): Promise<Subnet[]> {
    return this.read((ctx) => selectRows(ctx, 'subnets', filter).map(subnetFromRow));
  }
  async showSubnet(id: string): Promise<Subnet> {
    return this.read((ctx) => subnets.showSubnet(ctx, id));
  }
  async createSubnets(bodies: readonly SubnetCreate[]): Promise<Subnet[]> {
    return this.write((ctx) => bodies.map((body) => subnets.createSubnet(ctx, body)));
  }
  async updateSubnet(id: string, body: SubnetUpdate): Promise<Subnet> {
    return this.write((ctx) => subnets.updateSubnet(ctx, id, body));
  }
  async deleteSubnet(id: string): Promise<void> {
    return this.write((ctx) => subnets.deleteSubnet(ctx, id));
  }

  async listSubnetPools(filter?: ListFilter): Promise<SubnetPool[]> {
    return this.read((ctx) => selectRows(ctx, 'subnetpools', filter).map(subnetPoolFromRow));
  }
  async showSubnetPool(id: string): Promise<SubnetPool> {
    return this.read((ctx) => subnetpools.showSubnetPool(ctx, id));
  }
  async createSubnetPool(body: SubnetPoolCreate): Promise<SubnetPool> {
    return this.write((ctx) => subnetpools.createSubnetPool(ctx, body));
  }
  async updateSubnetPool(id: string, body: SubnetPoolUpdate): Promise<SubnetPool> {
    return this.write((ctx) => subnetpools.updateSubnetPool(ctx, id, body));
  }
  async deleteSubnetPool(id: string): Promise<void> {
    return this.write((ctx) => subnetpools.deleteSubnetPool(ctx, id));
  }

  async listPorts(filter?: ListFilter): Promise<Port[]> {
    return this.read((ctx) => selectRows(ctx, 'ports', filter).map((row) => portFromRow(row, ctx.vifType)));
  }
  async showPort(id: string): Promise<Port> {
    return this.read((ctx) => ports.showPort(ctx, id));
  }
  async createPort(body: PortCreate): Promise<Port> {
    return this.write((ctx) => ports.createPort(ctx, body));
  }
  async updatePort(id: string, body: PortUpdate): Promise<Port> {
    return this.write((ctx) => ports.updatePort(ctx, id, body));
  }
  async deletePort(id: string): Promise<void> {
    return this.write((ctx) => ports.deletePort(ctx, id));
  }

  async listSecurityGroups(filter?: ListFilter): Promise<SecurityGroup[]> {
    // A write: the project's default group is created on first list, as in Neutron.
    return this.write((ctx) => securityGroups.listSecurityGroups(ctx, filter));
  }
  async createSecurityGroup(body: SecurityGroupCreate): Promise<SecurityGroup> {
    return this.write((ctx) => securityGroups.createSecurityGroup(ctx, body));
  }
  async deleteSecurityGroup(id: string): Promise<void> {
    return this.write((ctx) => securityGroups.deleteSecurityGroup(ctx, id));
  }
  async createSecurityGroupRules(bodies: readonly SecurityGroupRuleCreate[]): Promise<SecurityGroupRule[]> {
    return this.write((ctx) => securityGroups.createSecurityGroupRules(ctx, bodies));
  }

  async replaceTags(resource: TaggedResource, id: string, list: readonly string[]): Promise<string[]> {
    return this.write((ctx) => tags.replaceTags(ctx, resource, id, list));
  }
  async addTag(resource: TaggedResource, id: string, tag: string): Promise<void> {
    return this.write((ctx) => tags.addTag(ctx, resource, id, tag));
  }
  async removeTag(resource: TaggedResource, id: string, tag: string): Promise<void> {
    return this.write((ctx) => tags.removeTag(ctx, resource, id, tag));
  }
}

/**
 * Open (creating and migrating as needed) the embedded store at `options.path`. The file is safe to share
 * between processes: writers serialise on SQLite's lock, readers see committed state (WAL).
 */
export function openEmbeddedNeutron(options: EmbeddedNeutronOptions): EmbeddedNeutron {
  const db = openDatabase(options.path);
  return new EmbeddedNeutron(db, {
    projectId: options.projectId ?? DEFAULT_PROJECT_ID,
    vifType: options.vifType ?? 'bridge',
  });
}
