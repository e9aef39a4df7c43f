/**
 * The default binding (kuryr's veth binding, behaviour doc 13.3): a veth pair per port, the container end
 * handed to Docker, the host end attached according to the port's `binding:vif_type`: `bridge`, `tap` and
 * `ovs` in-process, every other type by its bind script `<bindir>/<vif_type>` (hook.ts).
 */
import type { Port } from '../neutron/types.ts';
import { isMac } from '../util/ip.ts';
import type { Binder, BindRequest, InterfaceNames } from './binder.ts';
import { deleteBridgeIfUnused, ensureBridge } from './bridge.ts';
import type { CommandRunner } from './exec.ts';
import { BindingError, bindingErrorReasons } from './errors.ts';
import { BindHooks, type BindingLog } from './hook.ts';
import { IpCommand, type IpLink, isAlreadyExists, validateMtu } from './ip-command.ts';
import { bridgeName, interfaceNames, ownerAlias, validateInterfaceName } from './names.ts';
import { OvsBinding, OvsVsctl, type OvsVsctlOptions, ovsPlan } from './ovs.ts';

export interface VethBinderOptions {
  /** The `ip` runner; default `new IpCommand()`. */
  ip?: IpCommand;
  /** Marks created devices with the alias `kuryr-ts:<owner>` so reconciliation can tell ours from others'. */
  owner?: string;
  /** `[DEFAULT] bindir`: directory of the bind scripts of other vif types; default `/usr/libexec/kuryr`. */
  bindir?: string;
  /** Time limit of one bind script run; default 60 s. */
  hookTimeoutMs?: number;
  /** Replaces the process runner of bind scripts (tests). */
  hookRunner?: CommandRunner;
  /** `ovs-vsctl` for the `ovs` vif type (program, time limit). */
  ovs?: OvsVsctlOptions;
  /** Bind scripts' output (standard output at debug, standard error at error level). */
  log?: BindingLog;
}

/** What an attachment step sees: the port, its interface names, and where to register undo steps. */
interface AttachContext {
  port: Port;
  names: InterfaceNames;
  mtu: number;
  /** Undo steps for what this bind created; run in reverse order if a later step fails. */
  undo: UndoStep[];
}

type UndoStep = () => Promise<void>;
/** Attaches the (already up) host end as one vif type requires. */
type Attach = (ctx: AttachContext) => Promise<void>;

/** vif type of a port without one, as kuryr uses. */
const UNBOUND = 'unbound';

/** vif types that never had a binding: there is nothing for a script to undo. */
const NEVER_BOUND = new Set([UNBOUND, 'binding_failed']);

/** Binds ports with a veth pair; `bridge`, `tap` and `ovs` in-process, other vif types by bind script. */
export class VethBinder implements Binder {
  readonly #ip: IpCommand;
  readonly #alias: string[];
  readonly #hooks: BindHooks;
  readonly #ovs: OvsBinding;

  constructor(options: VethBinderOptions = {}) {
    this.#ip = options.ip ?? new IpCommand();
    this.#alias = options.owner === undefined ? [] : ['alias', ownerAlias(options.owner)];
    this.#hooks = new BindHooks({
      ...(options.bindir === undefined ? {} : { bindir: options.bindir }),
      ...(options.hookTimeoutMs === undefined ? {} : { timeoutMs: options.hookTimeoutMs }),
      ...(options.hookRunner === undefined ? {} : { runner: options.hookRunner }),
      ...(options.log === undefined ? {} : { log: options.log }),
    });
    this.#ovs = new OvsBinding({
      ip: this.#ip,
      vsctl: new OvsVsctl(options.ovs),
      alias: this.#alias,
      ...(options.owner === undefined ? {} : { owner: options.owner }),
    });
  }

  async bind(req: BindRequest): Promise<InterfaceNames> {
    const { port, mtu } = req;
    // Everything that can be checked without touching the host is checked first: a bad request changes nothing.
    const names = interfaceNames(port.id);
    validateMtu(mtu);
    const mac = validateMac(port.mac_address);
    const attach = await this.#attachmentFor(req, names, mac);

    const undo: UndoStep[] = [];
    try {
      await this.#ensureVethPair(names, undo);
      // Docker moves the container end into the sandbox; MTU and MAC survive the move, addresses would not
      // (Docker adds them itself), so the container end gets no address and stays down here.
      await this.#ip.run(['link', 'set', 'dev', names.container, 'mtu', String(mtu), 'address', mac]);
      await this.#ip.run(['link', 'set', 'dev', names.host, 'mtu', String(mtu), ...this.#alias, 'up']);
      await attach({ port, names, mtu, undo });
      return names;
    } catch (err) {
      throw await rollBack(undo, err);
    }
  }

  async unbind(port: Port): Promise<void> {
    const names = interfaceNames(port.id);
    const vifType = port['binding:vif_type'] || UNBOUND;
    switch (vifType) {
      case 'bridge':
      case 'tap':
        break; // deleting the host end detaches it
      case 'ovs':
        await this.#ovs.unplug(ovsPlan(port, names, port.mac_address.toLowerCase()));
        break;
      default:
        // kuryr runs the script even for these; its own `unbound` script always fails, which would make a
        // leftover endpoint impossible to remove.
        if (!NEVER_BOUND.has(vifType)) await this.#hooks.unbind(vifType, port, names.host);
    }
    // Deleting one end of a veth deletes the peer and detaches it from its bridge.
    await this.#ip.deleteLink(names.host);
  }

  /**
   * The attachment for the port's vif type, resolved (and its inputs validated, the bind script found)
   * before anything is created.
   */
  async #attachmentFor({ port, bridge, icc }: BindRequest, names: InterfaceNames, mac: string): Promise<Attach> {
    const vifType = port['binding:vif_type'] || UNBOUND;
    switch (vifType) {
      case 'bridge': {
        const name = validateInterfaceName(bridge ?? bridgeName(port.network_id));
        return (ctx) => this.#attachToBridge(name, icc ?? true, ctx);
      }
      case 'tap':
        return async () => {}; // the host end stays unbridged
      case 'ovs': {
        const plan = ovsPlan(port, names, mac);
        return ({ mtu, undo }) => this.#ovs.plug(plan, mtu, undo);
      }
      default: {
        const script = await this.#hooks.scriptFor(vifType);
        return ({ names }) => this.#hooks.bind(script, port, names.host);
      }
    }
  }

  /**
   * kuryr's `bridge` bind script: bridge `brq<net[:11]>` (created if missing, forward delay 0, STP off, up). Without
   * inter-container communication (Docker's `enable_icc=false`) the port is an isolated bridge port: it talks to
   * the bridge (the gateway, the outside) but not to the other isolated ports, whatever br_netfilter does.
   */
  async #attachToBridge(bridge: string, icc: boolean, { names, undo }: AttachContext): Promise<void> {
    if (await ensureBridge(this.#ip, bridge)) undo.push(() => deleteBridgeIfUnused(this.#ip, bridge));
    await this.#ip.run(['link', 'set', 'dev', bridge, ...this.#alias, 'up']);
    await this.#ip.run(['link', 'set', 'dev', names.host, 'master', bridge]);
    if (!icc) await this.#ip.run(['link', 'set', 'dev', names.host, 'type', 'bridge_slave', 'isolated', 'on']);
  }

  /** Create the pair, or reuse one of exactly these names (a retried request). */
  async #ensureVethPair(names: InterfaceNames, undo: UndoStep[]): Promise<void> {
    const existing = await this.#ip.getLink(names.host);
    if (existing) {
      assertOurPair(existing, names);
      return;
    }
    try {
      await this.#ip.run(['link', 'add', 'dev', names.host, 'type', 'veth', 'peer', 'name', names.container]);
    } catch (err) {
      // A concurrent bind of the same port may have won the race: reuse its pair.
      const raced = isAlreadyExists(err) ? await this.#ip.getLink(names.host) : undefined;
      if (!raced) throw err;
      assertOurPair(raced, names);
      return;
    }
    undo.push(async () => {
      await this.#ip.deleteLink(names.host);
    });
  }
}

/** A reusable host end is a veth whose peer is our container end, still in this namespace. */
function assertOurPair(link: IpLink, names: InterfaceNames): void {
  if (link.kind !== 'veth' || link.peer !== names.container) {
    const what =
      link.kind !== 'veth'
        ? `a ${link.kind ?? 'plain'} device`
        : `a veth whose peer is ${link.peer ?? 'in another network namespace'}`;
    throw new BindingError(
      bindingErrorReasons.deviceConflict,
      `device ${names.host} exists but is ${what}, not the veth peer of ${names.container}; refusing to reuse it`,
    );
  }
}

function validateMac(mac: string): string {
  if (typeof mac !== 'string' || !isMac(mac)) {
    throw new BindingError(bindingErrorReasons.invalidInput, `invalid port MAC address ${JSON.stringify(mac)}`);
  }
  return mac.toLowerCase();
}

/** Undo in reverse order; returns the error to throw (the original, or both when cleaning up failed too). */
async function rollBack(undo: readonly UndoStep[], original: unknown): Promise<unknown> {
  const failures: unknown[] = [];
  for (const step of [...undo].reverse()) {
    try {
      await step();
    } catch (err) {
      failures.push(err);
    }
  }
  if (failures.length === 0) return original;
  const message = original instanceof Error ? original.message : String(original);
  return new AggregateError([original, ...failures], `${message} (and cleaning up after it failed)`);
}
