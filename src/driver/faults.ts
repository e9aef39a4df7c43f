/**
 * Fault-injection points for crash tests. Enabled only by the environment variable `KURYR_FAULT_POINTS`
 * (comma-separated names, or `*` for all): a process reaching an enabled point kills itself with SIGKILL,
 * exactly as a crash between two steps of an operation would. Without the variable this is a no-op.
 */

/** Every point, in the order the operations reach them. */
export const FAULT_POINTS = [
  'request-pool:after-create',
  'create-network:before-tags',
  'create-network:before-subnet-tags',
  'create-network:before-bridge',
  'request-address:after-create-port',
  'create-endpoint:before-tags',
  'create-endpoint:before-bind',
  'delete-endpoint:before-untag',
  'release-address:before-delete-port',
  'delete-network:before-neutron',
  'delete-network:before-pools',
] as const;

export type FaultPoint = (typeof FAULT_POINTS)[number];

const enabled = new Set((process.env.KURYR_FAULT_POINTS ?? '').split(',').filter((s) => s !== ''));

/** Crashes the process here if this point is enabled. */
export function faultPoint(point: FaultPoint): void {
  if (enabled.size > 0 && (enabled.has(point) || enabled.has('*'))) {
    process.stderr.write(`kuryr: fault point ${point} reached: SIGKILL\n`);
    process.kill(process.pid, 'SIGKILL');
  }
}
