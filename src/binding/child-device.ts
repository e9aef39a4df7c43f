/**
 * The host side of the nested port drivers: the container's interface is a child device of the VM's NIC
 * (`[binding] link_iface`), made in the VM's namespace under the container name (`t_c<port[:11]>`) for Docker to
 * move into the container. macvlan.ts and vlan.ts say which kind; this module creates, reuses and deletes it.
 */
import { BindingError, bindingErrorReasons } from './errors.ts';
import { IpCommand, type IpLink, isAlreadyExists, validateMtu } from './ip-command.ts';
import { ownerAlias, validateInterfaceName } from './names.ts';

/** One child device to create. */
export interface ChildDeviceSpec {
  /** Its name (the container end: `t_c<port[:11]>`). */
  name: string;
  /** The parent, `[binding] link_iface`. */
  link: string;
  /** MAC to give it; undefined for ipvlan (which shares the parent's). */
  mac: string | undefined;
  mtu: number;
  /** `ip link add ... type <kind> <typeArgs>`: `macvlan mode bridge`, `ipvlan mode l2`, `vlan id N`. */
  kind: 'macvlan' | 'ipvlan' | 'vlan';
  typeArgs: readonly string[];
}

/** Creates, reuses (a retried request) and deletes child devices with `ip`. */
export class ChildDevices {
  readonly #ip: IpCommand;
  readonly #alias: string[];

  constructor(options: { ip?: IpCommand; owner?: string } = {}) {
    this.#ip = options.ip ?? new IpCommand();
    this.#alias = options.owner === undefined ? [] : ['alias', ownerAlias(options.owner)];
  }

  /** The parent device, or a clear error naming the option when it is missing. */
  async parent(link: string): Promise<IpLink> {
    validateInterfaceName(link);
    const parent = await this.#ip.getLink(link);
    if (parent === undefined) {
      throw new BindingError(
        bindingErrorReasons.invalidInput,
        `[binding] link_iface ${link} does not exist in this network namespace`,
      );
    }
    return parent;
  }

  /** Create the device (or reuse ours of that name); on failure nothing is left. */
  async create(spec: ChildDeviceSpec): Promise<void> {
    validateInterfaceName(spec.name);
    validateMtu(spec.mtu);
    await this.parent(spec.link);
    const existing = await this.#ip.getLink(spec.name);
    if (existing !== undefined) {
      assertOurs(existing, spec);
    } else {
      try {
        await this.#ip.run([
          'link',
          'add',
          'link',
          spec.link,
          'name',
          spec.name,
          ...(spec.mac === undefined ? [] : ['address', spec.mac]),
          'mtu',
          String(spec.mtu),
          'type',
          spec.kind,
          ...spec.typeArgs,
        ]);
      } catch (err) {
        const raced = isAlreadyExists(err) ? await this.#ip.getLink(spec.name) : undefined;
        if (raced === undefined) throw err;
        assertOurs(raced, spec);
      }
    }
    try {
      // Docker moves the device into the container, which brings it up; the alias marks it as ours for gc.
      if (this.#alias.length > 0) await this.#ip.run(['link', 'set', 'dev', spec.name, ...this.#alias]);
    } catch (err) {
      await this.#ip.deleteLink(spec.name).catch(() => undefined);
      throw err;
    }
  }

  /** Delete the device; a missing one is not an error (the container's namespace may have taken it with it). */
  async remove(name: string): Promise<void> {
    await this.#ip.deleteLink(validateInterfaceName(name));
  }
}

/** A device of our name is reused only when it is the same kind of child of the same parent. */
function assertOurs(link: IpLink, spec: ChildDeviceSpec): void {
  if (link.kind !== spec.kind || link.peer !== spec.link) {
    throw new BindingError(
      bindingErrorReasons.deviceConflict,
      `device ${spec.name} exists but is ${link.kind === undefined ? 'a plain device' : `a ${link.kind}`}${
        link.peer === undefined ? '' : ` on ${link.peer}`
      }, not a ${spec.kind} on ${spec.link}; refusing to reuse it`,
    );
  }
}
