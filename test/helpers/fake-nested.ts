/**
 * Fakes for the nested port drivers' unit tests:
 * - `FakeLinks`: an `ip` runner over an in-memory table of links that records every command (the host side
 *   of the VLAN driver is tested this way: this kernel has no 8021q);
 * - `FakeVmNeutron`: the port and trunk calls of a Neutron with `revision-if-match` semantics (412 when the
 *   revision moved) and `trunk` semantics (409 on a taken segmentation ID), and a hook that runs between a
 *   read and the next write so tests can make other writers interleave.
 */
import { randomUUID } from 'node:crypto';
import type { CommandRunner } from '../../src/binding/exec.ts';
import { NeutronError } from '../../src/neutron/errors.ts';
import type { NestedNeutronApi, SubPort, Trunk } from '../../src/neutron/nested-api.ts';
import type { ListFilter } from '../../src/neutron/api.ts';
import type { Port, PortUpdate } from '../../src/neutron/types.ts';

interface FakeLink {
  ifname: string;
  address?: string;
  kind?: string;
  link?: string;
  mtu: number;
  alias?: string;
}

export class FakeLinks {
  readonly links = new Map<string, FakeLink>();
  readonly commands: string[][] = [];
  /** Makes the next `link add` fail with this stderr (and exit 2). */
  failNextAdd: string | undefined;
  private nextIndex = 2;

  addLink(link: FakeLink): void {
    this.links.set(link.ifname, link);
  }

  readonly exec: CommandRunner = async (_file, args) => {
    const a = [...args];
    this.commands.push(a);
    const fail = (stderr: string) => Promise.reject(Object.assign(new Error(stderr), { code: 2, stderr, stdout: '' }));
    if (a[0] === '-json' && a.includes('show')) {
      const name = a[a.indexOf('dev') + 1] ?? '';
      const l = this.links.get(name);
      if (l === undefined) return fail(`Device "${name}" does not exist.`);
      return {
        stdout: JSON.stringify([
          {
            ifindex: this.nextIndex++,
            ifname: l.ifname,
            mtu: l.mtu,
            flags: [],
            address: l.address,
            ...(l.link === undefined ? {} : { link: l.link }),
            ...(l.kind === undefined ? {} : { linkinfo: { info_kind: l.kind } }),
          },
        ]),
        stderr: '',
      };
    }
    if (a[0] === 'link' && a[1] === 'add') {
      if (this.failNextAdd !== undefined) {
        const text = this.failNextAdd;
        this.failNextAdd = undefined;
        return fail(text);
      }
      const name = a[a.indexOf('name') + 1] ?? '';
      if (this.links.has(name)) return fail('RTNETLINK answers: File exists');
      const parent = a[a.indexOf('link', 2) + 1] ?? '';
      if (!this.links.has(parent)) return fail(`Cannot find device "${parent}"`);
      const addr = a.includes('address') ? a[a.indexOf('address') + 1] : undefined;
      this.links.set(name, {
        ifname: name,
        link: parent,
        kind: a[a.indexOf('type') + 1] ?? '',
        mtu: Number(a[a.indexOf('mtu') + 1]),
        ...(addr === undefined ? {} : { address: addr }),
      });
      return { stdout: '', stderr: '' };
    }
    if (a[0] === 'link' && a[1] === 'del') {
      const name = a[3] ?? '';
      if (!this.links.delete(name)) return fail(`Cannot find device "${name}"`);
      return { stdout: '', stderr: '' };
    }
    if (a[0] === 'link' && a[1] === 'set') {
      const name = a[3] ?? '';
      const l = this.links.get(name);
      if (l === undefined) return fail(`Cannot find device "${name}"`);
      if (a.includes('alias')) l.alias = a[a.indexOf('alias') + 1] ?? '';
      return { stdout: '', stderr: '' };
    }
    return fail(`fake ip: unexpected command ${a.join(' ')}`);
  };
}

export class FakeVmNeutron implements NestedNeutronApi {
  readonly ports = new Map<string, Port>();
  readonly trunks = new Map<string, Trunk>();
  /** Runs after every showPort/showTrunk answer, before the caller can write (interleave other writers here). */
  afterRead: (() => Promise<void>) | undefined;
  writes = 0;
  preconditionFailures = 0;
  conflicts = 0;

  addPort(port: Port): void {
    this.ports.set(port.id, structuredClone(port));
  }

  addTrunk(parentPortId: string, subports: SubPort[] = []): Trunk {
    const trunk: Trunk = {
      id: randomUUID(),
      name: 'trunk',
      port_id: parentPortId,
      status: 'ACTIVE',
      sub_ports: subports,
      revision_number: 1,
    };
    this.trunks.set(trunk.id, trunk);
    return trunk;
  }

  async listPorts(filter?: ListFilter): Promise<Port[]> {
    return [...this.ports.values()]
      .filter((p) => filter?.mac_address === undefined || p.mac_address === filter.mac_address)
      .filter((p) => filter?.network_id === undefined || p.network_id === filter.network_id)
      .filter((p) => !Array.isArray(filter?.id) || (filter.id as readonly unknown[]).includes(p.id))
      .map((p) => structuredClone(p));
  }

  async showPort(id: string): Promise<Port> {
    const p = this.ports.get(id);
    if (p === undefined) throw new NeutronError(404, 'PortNotFound', `Port ${id} could not be found.`);
    const copy = structuredClone(p);
    await this.afterRead?.();
    return copy;
  }

  async updatePortIfRevision(id: string, body: PortUpdate, revision: number): Promise<Port> {
    const p = this.ports.get(id);
    if (p === undefined) throw new NeutronError(404, 'PortNotFound', `Port ${id} could not be found.`);
    if (p.revision_number !== revision) {
      this.preconditionFailures++;
      throw new NeutronError(
        412,
        'RevisionNumberConstraintFailed',
        `Constrained to ${revision}, but current revision is ${p.revision_number}`,
      );
    }
    if (body.allowed_address_pairs !== undefined) {
      const ips = body.allowed_address_pairs.map((x) => x.ip_address);
      if (new Set(ips).size !== ips.length) throw new NeutronError(400, 'DuplicateAddressPairInRequest', 'duplicate');
      if (ips.length > 10)
        throw new NeutronError(
          400,
          'AllowedAddressPairExhausted',
          'The number of allowed address pair exceeds the maximum 10.',
        );
      p.allowed_address_pairs = structuredClone(body.allowed_address_pairs);
    }
    p.revision_number++;
    this.writes++;
    return structuredClone(p);
  }

  async updatePort(id: string, body: PortUpdate): Promise<Port> {
    const p = this.ports.get(id);
    if (p === undefined) throw new NeutronError(404, 'PortNotFound', `Port ${id} could not be found.`);
    Object.assign(p, structuredClone(body));
    p.revision_number++;
    return structuredClone(p);
  }

  async listTrunks(filter?: ListFilter): Promise<Trunk[]> {
    return [...this.trunks.values()].filter((t) => filter?.port_id === undefined || t.port_id === filter.port_id);
  }

  async showTrunk(id: string): Promise<Trunk> {
    const t = this.trunks.get(id);
    if (t === undefined) throw new NeutronError(404, 'TrunkNotFound', `Trunk ${id} could not be found.`);
    const copy = structuredClone(t);
    await this.afterRead?.();
    return copy;
  }

  async addSubports(trunkId: string, subports: readonly SubPort[]): Promise<Trunk> {
    const t = this.trunks.get(trunkId);
    if (t === undefined) throw new NeutronError(404, 'TrunkNotFound', 'no trunk');
    for (const s of subports) {
      if ((this.ports.get(s.port_id)?.device_id ?? '') !== '') {
        throw new NeutronError(409, 'PortInUse', `Port ${s.port_id} already has an attached device.`);
      }
      if (t.sub_ports.some((x) => x.segmentation_id === s.segmentation_id || x.port_id === s.port_id)) {
        this.conflicts++;
        throw new NeutronError(409, 'DuplicateSubPort', `segmentation_id ${s.segmentation_id} already in use`);
      }
    }
    t.sub_ports.push(...structuredClone(subports));
    return structuredClone(t);
  }

  async removeSubports(trunkId: string, portIds: readonly string[]): Promise<Trunk> {
    const t = this.trunks.get(trunkId);
    if (t === undefined) throw new NeutronError(404, 'TrunkNotFound', 'no trunk');
    for (const id of portIds) {
      if (!t.sub_ports.some((s) => s.port_id === id))
        throw new NeutronError(404, 'SubPortNotFound', `${id} is not a subport`);
    }
    t.sub_ports = t.sub_ports.filter((s) => !portIds.includes(s.port_id));
    return structuredClone(t);
  }
}
