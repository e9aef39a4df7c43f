/**
 * `kernel.port-driver`: the kernel module the configured port driver's host side needs (macvlan or ipvlan for
 * `nested`, 8021q for `vlan`), in one line that names the module and the driver. A loaded module shows in
 * /sys/module; otherwise one device of that kind is made on a veth in a throw-away network namespace.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Config } from '../config/config.ts';
import { runTool } from './host.ts';
import { type CheckResult, type DoctorPaths, failed, ok, skip } from './types.ts';

const ID = 'kernel.port-driver';

interface Need {
  module: string;
  /** `ip link add link <parent> name <dev> type ...` */
  args: string[];
}

/** The module (and a device to probe it with) the configured driver needs, or undefined for veth/sriov. */
export function moduleNeeded(config: Config): Need | undefined {
  const { default: driver, binding } = config.portDrivers;
  if (driver === 'vlan') return { module: '8021q', args: ['type', 'vlan', 'id', '42'] };
  if (driver !== 'nested') return undefined;
  return binding === 'ipvlan'
    ? { module: 'ipvlan', args: ['type', 'ipvlan', 'mode', 'l2'] }
    : { module: 'macvlan', args: ['type', 'macvlan', 'mode', 'bridge'] };
}

export async function checkPortDriverKernel(
  config: Config | null,
  paths: DoctorPaths,
  ip = 'ip',
): Promise<CheckResult> {
  if (config === null) return skip(ID, 'not checked: the configuration did not load');
  const need = moduleNeeded(config);
  const driver = config.portDrivers.default;
  if (need === undefined) return skip(ID, `the ${driver} port driver needs no extra kernel module`);
  const what = `the ${driver} port driver (${config.portDrivers.binding} children of ${config.portDrivers.linkIface})`;
  if (existsSync(path.join(paths.sysModule, need.module))) return ok(ID, `${need.module} loaded, for ${what}`);
  if (process.getuid?.() !== 0) return skip(ID, `${need.module} is not loaded as a module; probing it needs root`);
  const ns = `kxdocpd-${process.pid}-${randomBytes(3).toString('hex')}`;
  const add = await runTool(ip, ['netns', 'add', ns]);
  if (add.code !== 0) return skip(ID, `${need.module} not loaded, and no namespace to probe in: ${add.stderr.trim()}`);
  try {
    const parent = await runTool(ip, ['-n', ns, 'link', 'add', 'kxpd-a', 'type', 'veth', 'peer', 'name', 'kxpd-b']);
    if (parent.code !== 0) return skip(ID, `cannot probe ${need.module}: no veth to be its parent`);
    const r = await runTool(ip, ['-n', ns, 'link', 'add', 'link', 'kxpd-a', 'name', 'kxpd-c', ...need.args]);
    if (r.code === 0) return ok(ID, `${need.module} devices can be created, for ${what}`);
    return failed(
      ID,
      `kernel module ${need.module} missing: needed by ${what} (${r.stderr.trim() || `exit ${r.code}`})`,
      `modprobe ${need.module}, or use a kernel with it`,
    );
  } finally {
    await runTool(ip, ['netns', 'del', ns]);
  }
}
