/**
 * `[neutron] vif_plugging_is_fatal` / `vif_plugging_timeout`: after CreateEndpoint has bound the port and wired
 * the host side, wait for Neutron to report it `ACTIVE` (the L2 agent or OVN has plugged it).
 *
 * As kuryr-libnetwork does (controllers.py `network_driver_create_endpoint`, `utils.wait_for_port_active`): only
 * when `vif_plugging_is_fatal` is true, polling the port; not active in time → CreateEndpoint fails with
 * `Neutron port <name> did not become active on time.`; with the flag false (the default) nothing waits.
 * Unlike the original, `vif_plugging_timeout = 0` does not wait forever: every wait ends by the request's
 * deadline, so Docker always gets an answer within its plugin timeout.
 */
import type { VifPluggingSettings } from '../config/config.ts';
import { fail } from '../errors.ts';
import type { Port } from '../neutron/types.ts';
import { type DriverRuntime, errorMessage } from './context.ts';

export const VIF_PLUGGING_DEFAULTS: VifPluggingSettings = { fatal: false, timeoutSeconds: 0 };

/** Time between two reads of the port (the original reads it once a second). */
export const POLL_INTERVAL_MS = 500;
/** Left of the request's deadline for undoing the endpoint after a timeout. */
const ROLLBACK_MARGIN_MS = 3_000;
/** Longest wait outside a request (programmatic use): Docker's plugin timeout is 30 s. */
const DEFAULT_WAIT_MS = 20_000;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Resolves when the port is ACTIVE (or at once when not fatal); throws `KURYR_ERR_BINDING` when it is not
 * by the timeout or the request's deadline, whichever comes first.
 */
export async function waitForActivePort(
  rt: DriverRuntime,
  port: Port,
  settings: VifPluggingSettings = rt.settings.vifPlugging ?? VIF_PLUGGING_DEFAULTS,
): Promise<void> {
  if (!settings.fatal) return;
  const started = Date.now();
  const deadline = (rt.deadline?.at ?? started + DEFAULT_WAIT_MS) - ROLLBACK_MARGIN_MS;
  const until = settings.timeoutSeconds > 0 ? Math.min(deadline, started + settings.timeoutSeconds * 1000) : deadline;
  let status = port.status;
  for (;;) {
    if (status === 'ACTIVE') {
      rt.log.debug({ port: port.id, waitedMs: Date.now() - started }, 'port is ACTIVE');
      return;
    }
    const left = until - Date.now();
    if (left <= 0) break;
    await sleep(Math.min(POLL_INTERVAL_MS, left));
    try {
      status = (await rt.neutron.fresh.showPort(port.id)).status; // the agent changes it: never from the cache
    } catch (err) {
      // As the original: a failed read is logged and the wait goes on.
      rt.log.warn({ port: port.id, err: errorMessage(err) }, 'could not read the port to check its status');
    }
  }
  const waited = ((Date.now() - started) / 1000).toFixed(1);
  throw fail.binding(
    `Neutron port ${port.name || port.id} did not become active on time. (status ${status} after ${waited} s; vif_plugging_is_fatal = true, vif_plugging_timeout = ${settings.timeoutSeconds})`,
  );
}
