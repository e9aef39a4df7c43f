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
 */
export async function ensureBridge(ip: IpCommand, name: string): Promise<boolean> {
  const existing = await ip.getLink(name);
  if (existing) {
    assertBridge(name, existing.kind);
    return false;
  }
  try {
    await ip.run(['link', 'add', 'name', name, 'type', 'bridge', ...BRIDGE_ATTRIBUTES]);
    return true;
  } catch (err) {
    if (!isAlreadyExists(err)) throw err;
    const raced = await ip.getLink(name);
    if (!raced) throw err;
    assertBridge(name, raced.kind);
    return false;
  }
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
