/**
 * The default binding (kuryr's veth binding, behaviour doc 13.3): a veth pair per port, the container end
 * handed to Docker, the host end attached according to the port's `binding:vif_type`: `bridge`, `tap` and
 * `ovs` in-process, every other type by its bind script `<bindir>/<vif_type>` (hook.ts).
 */
import { isMac } from '../util/ip.ts';
import type { InterfaceNames, PlugRequest, VifPort } from './binder.ts';
import { deleteBridgeIfUnused, ensureBridge } from './bridge.ts';
import type { CommandRunner } from './exec.ts';
import { BindingError, bindingErrorReasons } from './errors.ts';
import { BindHooks, type BindingLog } from './hook.ts';
import { type IpBatchResult, IpCommand, type IpLink, isAlreadyExists, validateMtu } from './ip-command.ts';
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
  port: VifPort;
  names: InterfaceNames;
  mtu: number;
  /** Undo steps for what this bind created; run in reverse order if a later step fails. */
  undo: UndoStep[];
}

type UndoStep = () => Promise<void>;
/** Attaches the (already up) host end as one vif type requires. */
type Attach = (ctx: AttachContext) => Promise<void>;

/** How a port's host end is attached: to a Linux bridge (in the same `ip -batch` as the pair), or by a step. */
interface Attachment {
  bridge?: { name: string; icc: boolean };
  attach?: Attach;
}

/** vif type of a port without one, as kuryr uses. */
const UNBOUND = 'unbound';

/** vif types that never had a binding: there is nothing for a script to undo. */
const NEVER_BOUND = new Set([UNBOUND, 'binding_failed']);

/** Binds ports with a veth pair; `bridge`, `tap` and `ovs` in-process, other vif types by bind script. */
export class VethBinder {
  readonly #ip: IpCommand;
  readonly #alias: string[];
  readonly #hooks: BindHooks;
  readonly #ovs: OvsBinding;
  /** Linux bridges this binder made or checked (`#knowBridge`). */
  readonly #bridges = new Set<string>();

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

  /**
   * Create the veth pair for the port in the host namespace (reusing an existing pair of that name), give the
   * container end the port's MAC and the MTU, bring the host end up and attach it as its vif type requires.
   * On failure nothing is left behind.
   */
  async bind(port: PlugRequest): Promise<InterfaceNames> {
    const { mtu } = port;
    // Everything that can be checked without touching the host is checked first: a bad request changes nothing.
    const names = interfaceNames(port.portId);
    validateMtu(mtu);
    const mac = validateMac(port.mac);
    const attachment = await this.#attachmentFor(port, names, mac);

    const undo: UndoStep[] = [];
    try {
      if (attachment.bridge !== undefined) await this.#knowBridge(attachment.bridge.name, undo);
      await this.#plumb(names, mtu, mac, attachment.bridge, undo);
      await attachment.attach?.({ port, names, mtu, undo });
      return names;
    } catch (err) {
      throw await rollBack(undo, err);
    }
  }

  /** Detach and delete the port's host interface (the peer goes with it). A missing device is not an error. */
  async unbind(port: VifPort): Promise<void> {
    const names = interfaceNames(port.portId);
    const vifType = port.vifType || UNBOUND;
    switch (vifType) {
      case 'bridge':
      case 'tap':
        break; // deleting the host end detaches it
      case 'ovs':
        await this.#ovs.unplug(ovsPlan(port, names, port.mac.toLowerCase()));
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
   * before anything is created: a Linux bridge (done with the pair, in one `ip -batch`), or a step after it.
   */
  async #attachmentFor(port: PlugRequest, names: InterfaceNames, mac: string): Promise<Attachment> {
    const vifType = port.vifType || UNBOUND;
    switch (vifType) {
      case 'bridge': {
        const name = validateInterfaceName(port.bridge ?? bridgeName(port.networkId));
        return { bridge: { name, icc: port.icc ?? true } };
      }
      case 'tap':
        return {}; // the host end stays unbridged
      case 'ovs': {
        const plan = ovsPlan(port, names, mac);
        return { attach: ({ mtu, undo }) => this.#ovs.plug(plan, mtu, undo) };
      }
      default: {
        const script = await this.#hooks.scriptFor(vifType);
        return { attach: ({ names }) => this.#hooks.bind(script, port, names.host) };
      }
    }
  }

  /**
   * kuryr's `bridge` bind script: bridge `brq<net[:11]>` (created if missing, forward delay 0, STP off). A bridge
   * this binder has made or seen already is not looked up again (no `ip` process per bind: `IpCommand.batch`); one that
   * vanished or changed since is found out when the batch fails on it (`#plumb`).
   */
  async #knowBridge(bridge: string, undo: UndoStep[]): Promise<void> {
    if (this.#bridges.has(bridge)) return;
    if (await ensureBridge(this.#ip, bridge)) {
      undo.push(async () => {
        this.#bridges.delete(bridge);
        await deleteBridgeIfUnused(this.#ip, bridge);
      });
    }
    this.#bridges.add(bridge);
  }

  /**
   * The veth pair (created, or one of exactly these names reused: a retried request), the container end's MTU and
   * MAC, the host end's MTU, alias and up; with a bridge: the host end its port (isolated without
   * inter-container communication, Docker's `enable_icc=false`: it talks to the bridge, not to the other isolated
   * ports, whatever br_netfilter does), the bridge up. All in one `IpCommand.batch` (the long-lived `ip -batch`); a failing command is retried after the
   * repair its error calls for, or reported as `ip` reported it.
   *
   * Docker moves the container end into the sandbox; MTU and MAC survive the move, addresses would not (Docker adds
   * them itself), so the container end gets no address and stays down here.
   */
  async #plumb(
    names: InterfaceNames,
    mtu: number,
    mac: string,
    bridge: { name: string; icc: boolean } | undefined,
    undo: UndoStep[],
  ): Promise<void> {
    const commands: string[][] = [
      ['link', 'add', 'dev', names.host, 'type', 'veth', 'peer', 'name', names.container],
      ['link', 'set', 'dev', names.container, 'mtu', String(mtu), 'address', mac],
      ['link', 'set', 'dev', names.host, 'mtu', String(mtu), ...this.#alias, 'up'],
    ];
    const bridgeFrom = commands.length;
    if (bridge !== undefined) {
      // A probe first, which changes nothing (no bridge attribute given): a missing bridge fails there, by its line
      // (`master` would end `ip` without saying which line failed); then the port: on a device that is no longer
      // a bridge it fails before that device is touched.
      commands.push(['link', 'set', 'dev', bridge.name, 'type', 'bridge']);
      commands.push(['link', 'set', 'dev', names.host, 'master', bridge.name]);
      if (!bridge.icc) commands.push(['link', 'set', 'dev', names.host, 'type', 'bridge_slave', 'isolated', 'on']);
      commands.push(['link', 'set', 'dev', bridge.name, ...this.#alias, 'up']);
    }
    let from = 0;
    let bridgeRechecked = false;
    for (;;) {
      let failed: IpBatchResult['failed'];
      try {
        ({ failed } = await this.#ip.batch(commands.slice(from)));
      } catch (err) {
        // `ip` ended without naming the line (it could not be run, was killed, refused an argument): the pair
        // may have been made before, and then it is ours to undo.
        if (from === 0) {
          const made = await this.#ip.getLink(names.host).catch(() => undefined);
          if (made?.kind === 'veth' && made.peer === names.container) {
            undo.push(async () => {
              await this.#ip.deleteLink(names.host);
            });
          }
        }
        throw err;
      }
      const at = failed === undefined ? commands.length : from + failed.index;
      if (from === 0 && at > 0) {
        undo.push(async () => {
          await this.#ip.deleteLink(names.host);
        });
      }
      if (failed === undefined) return;
      if (at === 0 && isAlreadyExists(failed.error)) {
        // A retried request, or a concurrent bind of the same port that won the race: reuse its pair.
        const existing = await this.#ip.getLink(names.host);
        if (existing === undefined) throw failed.error;
        assertOurPair(existing, names);
        from = 1;
        continue;
      }
      if (bridge !== undefined && at >= bridgeFrom && !bridgeRechecked && this.#bridges.delete(bridge.name)) {
        // The bridge as remembered is gone or changed: look again (re-created when missing, refused when it is
        // no longer a bridge), then go on from the failed command.
        bridgeRechecked = true;
        await this.#knowBridge(bridge.name, undo);
        from = at;
        continue;
      }
      throw failed.error;
    }
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
