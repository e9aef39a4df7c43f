/**
 * Linux bridge primitives shared by the `bridge` vif binding and the embedded backend's agent.
 */
import { BindingError, bindingErrorReasons } from './errors.ts';
import { type IpCommand, isAlreadyExists } from './ip-command.ts';

/** Bridge attributes kuryr's `bridge` bind script uses (`brctl setfd 0`, `brctl stp off`). */
export const BRIDGE_ATTRIBUTES: readonly string[] = ['forward_delay', '0', 'stp_state', '0'];

/**
 * Make sure a Linux bridge called `name` exists (created with forward delay 0 and STP off when missing).
 * Resolves `true` when this call created it. A non-bridge device of that name is a `BindingError`.
 * Safe against a concurrent creator: losing the race counts as "already there".
 *
 * Created first, looked up only when the name is taken: a new bridge costs no `ip` process (`IpCommand.batch`
 * goes to the long-lived `ip`), and the kernel's "File exists" is as good an answer as a lookup would be.
 */
export async function ensureBridge(ip: IpCommand, name: string): Promise<boolean> {
  const { failed } = await ip.batch([['link', 'add', 'name', name, 'type', 'bridge', ...BRIDGE_ATTRIBUTES]]);
  if (failed === undefined) return true;
  if (!isAlreadyExists(failed.error)) throw failed.error;
  const existing = await ip.getLink(name);
  // Gone again already (deleted meanwhile): report the clash as it was.
  if (!existing) throw failed.error;
  assertBridge(name, existing.kind);
  return false;
}

/**
 * Delete the bridge `name` if it has no ports left (used to undo a bridge this process just created
 * without pulling it from under a concurrent request that attached a port meanwhile). Missing is fine.
 */
export async function deleteBridgeIfUnused(ip: IpCommand, name: string): Promise<void> {
  const link = await ip.getLink(name);
  if (link?.kind !== 'bridge') return;
  if ((await ip.listPorts(name)).length > 0) return;
  await ip.deleteLink(name);
}

function assertBridge(name: string, kind: string | undefined): void {
  if (kind !== 'bridge') {
    throw new BindingError(
      bindingErrorReasons.deviceConflict,
      `device ${name} exists but is a ${kind ?? 'plain'} device, not a Linux bridge`,
    );
  }
}
