/**
 * The host side. `tools.ip` (iproute2, every binding runs it), `tools.nft` (the embedded backend isolates its
 * networks with nftables), `tools.ovs-vsctl` (only for Neutron ports of vif_type `ovs`). `kernel.*`: the link
 * types the binding creates — a loaded module shows in /sys/module; otherwise (built in, or loadable on
 * demand) one device of the type is created in a throw-away network namespace that is deleted right after.
 * `host.*`: forwarding, the iptables FORWARD policy, br_netfilter and route_localnet (the embedded data path).
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { bindingErrorReasons } from '../binding/errors.ts';
import { runCommand } from '../binding/exec.ts';
import type { Config } from '../config/config.ts';
import { type CheckResult, type DoctorPaths, failed, ok, skip, warn } from './types.ts';

interface Ran {
  /** exit code; null when the command could not be started (not installed) */
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command with the binding layer's runner (exec.ts); never throws. */
export async function runTool(file: string, args: readonly string[], timeoutMs = 5_000): Promise<Ran> {
  try {
    return { code: 0, ...(await runCommand(bindingErrorReasons.ipCommand, file, args, { timeoutMs })) };
  } catch (err) {
    const failed = err as { exitCode?: number | null; stdout?: string; stderr?: string; message?: string };
    return {
      code: failed.exitCode ?? null,
      stdout: failed.stdout ?? '',
      stderr: failed.stderr || (failed.message ?? String(err)),
    };
  }
}

/** `tools.ip`, `tools.nft`, `tools.ovs-vsctl`. */
export async function checkTools(config: Config | null, ip = 'ip'): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  const ipv = await runTool(ip, ['-V']);
  results.push(
    ipv.code === 0
      ? ok('tools.ip', ipv.stdout.trim() || ipv.stderr.trim())
      : failed('tools.ip', `\`${ip}\` (iproute2) does not run: ${ipv.stderr.trim()}`, 'apt-get install iproute2'),
  );
  if (config?.backend === 'neutron') {
    results.push(skip('tools.nft', 'not used with the neutron backend (Neutron isolates networks)'));
  } else if (config !== null && !config.embedded.isolateNetworks) {
    results.push(skip('tools.nft', 'not used: [embedded] isolate_networks = false'));
  } else {
    const nft = await runTool('nft', ['--version']);
    results.push(
      nft.code === 0
        ? ok('tools.nft', nft.stdout.trim())
        : failed(
            'tools.nft',
            `nft (nftables) does not run: ${nft.stderr.trim()}`,
            'apt-get install nftables (the embedded backend keeps its networks apart with it), or set [embedded] isolate_networks = false',
          ),
    );
  }
  if (config?.backend !== 'neutron') {
    results.push(skip('tools.ovs-vsctl', 'not needed: the embedded backend plugs containers into Linux bridges'));
  } else {
    const ovs = await runTool('ovs-vsctl', ['--version']);
    results.push(
      ovs.code === 0
        ? ok('tools.ovs-vsctl', ovs.stdout.split('\n')[0]!.trim())
        : warn(
            'tools.ovs-vsctl',
            'ovs-vsctl (Open vSwitch) is not installed',
            'needed only when Neutron binds ports with vif_type ovs (Open vSwitch agent): apt-get install openvswitch-switch',
          ),
    );
  }
  return results;
}

interface Feature {
  kind: 'bridge' | 'veth' | 'vxlan' | 'macvlan';
  module: string;
  /** `ip link add` arguments after the device name (macvlan: built on the veth probe). */
  args: string[];
  needed: 'always' | 'neutron';
  why: string;
}

const FEATURES: readonly Feature[] = [
  { kind: 'bridge', module: 'bridge', args: ['type', 'bridge'], needed: 'always', why: 'one bridge per network' },
  {
    kind: 'veth',
    module: 'veth',
    args: ['type', 'veth', 'peer', 'name', 'kxdoc-peer'],
    needed: 'always',
    why: 'one veth pair per container',
  },
  {
    kind: 'vxlan',
    module: 'vxlan',
    args: ['type', 'vxlan', 'id', '42', 'dstport', '4789'],
    needed: 'neutron',
    why: "Neutron's VXLAN tenant networks",
  },
  {
    kind: 'macvlan',
    module: 'macvlan',
    args: ['type', 'macvlan', 'mode', 'bridge'],
    needed: 'neutron',
    why: 'nested (container-in-VM) set-ups',
  },
];

/** `kernel.bridge`, `kernel.veth`, `kernel.vxlan`, `kernel.macvlan`. */
export async function checkKernel(config: Config | null, paths: DoctorPaths, ip = 'ip'): Promise<CheckResult[]> {
  const loaded = new Set(FEATURES.filter((f) => existsSync(path.join(paths.sysModule, f.module))).map((f) => f.kind));
  const probed = new Map<string, string | null>(); // kind → null when it worked, else the error
  const toProbe = FEATURES.filter((f) => !loaded.has(f.kind));
  let probeSkipped: string | null = null;
  if (toProbe.length > 0) {
    if (process.getuid?.() !== 0) probeSkipped = 'not loaded as a module; probing needs root';
    else probeSkipped = await probe(ip, toProbe, probed);
  }
  const neutron = config?.backend === 'neutron';
  return FEATURES.map((f) => {
    const id = `kernel.${f.kind}`;
    if (loaded.has(f.kind)) return ok(id, `${f.module} module loaded`);
    const error = probed.get(f.kind);
    if (error === null) return ok(id, `${f.kind} devices can be created (built in or loaded on demand)`);
    if (error === undefined) return skip(id, probeSkipped ?? 'not probed (no parent link could be made)');
    const summary = `cannot create a ${f.kind} device: ${error}`;
    if (f.needed === 'always')
      return failed(id, summary, `load it (modprobe ${f.module}) or use a kernel with ${f.module} (${f.why})`);
    if (!neutron) return skip(id, `${summary} (not needed by the embedded backend)`);
    return warn(id, summary, `needed for ${f.why}: modprobe ${f.module}`);
  });
}

/** Creates one device per feature in a throw-away namespace; returns why probing was impossible, or null. */
async function probe(
  ip: string,
  features: readonly Feature[],
  probed: Map<string, string | null>,
): Promise<string | null> {
  const ns = `kxdoctor-${process.pid}-${randomBytes(3).toString('hex')}`;
  const add = await runTool(ip, ['netns', 'add', ns]);
  if (add.code !== 0) return `not loaded as a module, and no namespace to probe in: ${add.stderr.trim()}`;
  try {
    for (const f of features) {
      const dev = `kxdoc-${f.kind}`;
      if (f.kind === 'macvlan') {
        // A macvlan needs a parent link: a veth pair of its own (left unset when veth itself cannot be made).
        const parent = await runTool(ip, [
          '-n',
          ns,
          'link',
          'add',
          'kxdoc-parent',
          'type',
          'veth',
          'peer',
          'name',
          'kxdoc-p2',
        ]);
        if (parent.code !== 0) continue;
        const r = await runTool(ip, ['-n', ns, 'link', 'add', 'link', 'kxdoc-parent', 'name', dev, ...f.args]);
        probed.set(f.kind, r.code === 0 ? null : r.stderr.trim() || `exit ${r.code}`);
        continue;
      }
      const r = await runTool(ip, ['-n', ns, 'link', 'add', dev, ...f.args]);
      probed.set(f.kind, r.code === 0 ? null : r.stderr.trim() || `exit ${r.code}`);
    }
    return null;
  } finally {
    await runTool(ip, ['netns', 'del', ns]);
  }
}

/** A sysctl's value from /proc/sys (`net/ipv4/ip_forward`), or undefined when it does not exist. */
function sysctl(procSys: string, key: string): string | undefined {
  try {
    return readFileSync(path.join(procSys, key), 'utf8').trim();
  } catch {
    return undefined;
  }
}

/**
 * `host.ip_forward`, `host.forward_policy`, `host.br_netfilter`, `host.route_localnet`: the facts that decide
 * whether the embedded backend's containers reach the outside and each other (docs/embedded.md, "Data path").
 */
export async function checkForwarding(
  config: Config | null,
  procSys = '/proc/sys',
  iptables = 'iptables',
): Promise<CheckResult[]> {
  const ids = ['host.ip_forward', 'host.forward_policy', 'host.br_netfilter', 'host.route_localnet'];
  if (config?.backend === 'neutron') {
    return ids.map((id) => skip(id, 'not used with the neutron backend (its agents route and filter)'));
  }
  const results: CheckResult[] = [];
  const v4 = sysctl(procSys, 'net/ipv4/ip_forward');
  const v6 = sysctl(procSys, 'net/ipv6/conf/all/forwarding');
  const forwarding = `net.ipv4.ip_forward = ${v4 ?? '?'}, net.ipv6.conf.all.forwarding = ${v6 ?? '?'}`;
  results.push(
    v4 === '1'
      ? v6 === '1' || v6 === undefined
        ? ok('host.ip_forward', forwarding)
        : warn(
            'host.ip_forward',
            `${forwarding}: IPv6 containers cannot reach the outside`,
            'sysctl -w net.ipv6.conf.all.forwarding=1',
          )
      : warn(
          'host.ip_forward',
          `${forwarding}: containers cannot reach the outside (the plugin does not switch forwarding on)`,
          'sysctl -w net.ipv4.ip_forward=1 (dockerd does it when it starts, unless --ip-forward=false)',
        ),
  );
  const forward = await runTool(iptables, ['-w', '-S', 'FORWARD']);
  if (forward.code === null) {
    results.push(skip('host.forward_policy', `${iptables} is not installed: no iptables firewall to get past`));
  } else if (forward.code !== 0) {
    results.push(warn('host.forward_policy', `\`${iptables} -S FORWARD\` failed: ${forward.stderr.trim()}`, null));
  } else {
    const policy = /^-P FORWARD (\S+)$/m.exec(forward.stdout)?.[1] ?? '?';
    const userChain = (await runTool(iptables, ['-w', '-S', 'DOCKER-USER'])).code === 0;
    const where = userChain ? 'DOCKER-USER' : 'FORWARD';
    results.push(
      ok(
        'host.forward_policy',
        policy === 'DROP' || userChain
          ? `iptables FORWARD policy ${policy}${userChain ? ', DOCKER-USER present' : ''}: the plugin adds two ACCEPT rules per network bridge to ${where} (removed with the network)`
          : `iptables FORWARD policy ${policy}, no DOCKER-USER: the plugin adds no iptables rule`,
      ),
    );
  }
  const bridged = sysctl(procSys, 'net/bridge/bridge-nf-call-iptables');
  results.push(
    ok(
      'host.br_netfilter',
      bridged === undefined
        ? 'br_netfilter not loaded: bridged frames never cross iptables'
        : `net.bridge.bridge-nf-call-iptables = ${bridged}${bridged === '1' ? ': frames between containers of one network cross iptables FORWARD too (the ACCEPT rules above cover them)' : ''}`,
    ),
  );
  const localnet = sysctl(procSys, 'net/ipv4/conf/all/route_localnet');
  results.push(
    ok(
      'host.route_localnet',
      `net.ipv4.conf.all.route_localnet = ${localnet ?? '?'} (published ports on 127.0.0.1 need it on the interface that receives them)`,
    ),
  );
  return results;
}
