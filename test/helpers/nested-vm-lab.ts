/**
 * A "Nova VM" on this machine, for the nested port drivers' end-to-end test: a network namespace whose NIC is
 * a veth carrying a real Neutron port's MAC and IP, plugged into the Linux bridge lab's network.
 *
 * - Neutron: network `knested-N` (the lab's tenant type), a /24 of 10.216.0.0/16 that nothing overlaps, no
 *   DHCP; the VM port and a peer port, owned `compute:nova` and bound to the lab's host, as Nova makes them.
 * - peer: netns `knp-N`, its eth0 a veth whose host end is `tap<port[:11]>`: the linuxbridge agent takes it
 *   (port ACTIVE, `brq<net[:11]>` and the VXLAN device made). The agent does not enslave the tap of a
 *   `compute:*` port itself (Nova's os-vif does), so the lab does.
 * - VM: netns `knv-N`, its eth0 a veth (MTU of the network) whose host end `knvifN` the lab puts in the bridge.
 *   It is not named `tap…`, so the agent never manages it: updating the VM port's allowed_address_pairs then
 *   never makes the agent rewrite ebtables rules for it (with ebtables-nft that rewrite can hang the agent).
 * - The VM NIC's anti-spoofing, as a cloud with port security does it: nft table `bridge knested_N` drops
 *   frames from `knvifN` whose source MAC, or whose IPv4/ARP sender address, is neither the VM port's own nor
 *   one of its allowed_address_pairs. `syncAntiSpoofing()` reloads both sets from Neutron.
 * - Neutron inside the VM: socat relays 127.0.0.1:<port> in the VM to the host's 127.0.0.1:<port> through a
 *   unix socket, so the plugin in the VM reaches the lab's noauth Neutron at the same URL.
 *
 * Every piece is undone by `teardown()` in reverse order, also when building failed halfway.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { NeutronHttpClient } from '../../src/neutron/http/client.ts';
import type { Network, Port, Subnet } from '../../src/neutron/types.ts';
import { cidrsOverlap, parseCidr } from '../../src/util/ip.ts';

const execFileAsync = promisify(execFile);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export async function sh(file: string, args: readonly string[]): Promise<string> {
  const { stdout } = await execFileAsync(file, [...args], { encoding: 'utf8', timeout: 60_000 });
  return stdout;
}

export interface VmLab {
  n: string;
  dir: string;
  vmNetns: string;
  peerNetns: string;
  /** `nsenter --net=/run/netns/<vm>`: runs a program in the VM (without remounting /sys, unlike `ip netns exec`). */
  inVm: string[];
  /** The VM's hostname: `binding:host_id` of the containers' ports. */
  vmHost: string;
  network: Network;
  subnet: Subnet;
  vmPort: Port;
  peerPort: Port;
  peerIp: string;
  /** Reload the VM NIC's anti-spoofing sets from the VM port in Neutron. */
  syncAntiSpoofing(): Promise<{ macs: string[]; ips: string[] }>;
  teardown(): Promise<string[]>;
}

export interface VmLabOptions {
  neutron: NeutronHttpClient;
  /** `binding:host_id` the lab's agent answers to. */
  agentHost: string;
  /** The noauth Neutron port on the host's 127.0.0.1 to relay into the VM. */
  neutronPort: number;
}

/** A free /24 of 10.216.0.0/16: no subnet and no subnet pool prefix overlaps it. */
async function freeCidr(neutron: NeutronHttpClient): Promise<string> {
  const used = [
    ...(await neutron.listSubnets({ fields: ['cidr'] })).map((s) => s.cidr),
    ...(await neutron.listSubnetPools({ fields: ['prefixes'] })).flatMap((p) => p.prefixes),
  ].filter((c) => !c.includes(':'));
  for (let i = 0; i < 50; i++) {
    const cidr = `10.216.${Math.floor(Math.random() * 256)}.0/24`;
    if (!used.some((u) => cidrsOverlap(parseCidr(u), parseCidr(cidr)))) return cidr;
  }
  throw new Error('no free /24 in 10.216.0.0/16');
}

export async function buildVmLab(opts: VmLabOptions): Promise<VmLab> {
  const { neutron } = opts;
  const n = Math.random().toString(36).slice(2, 7);
  const dir = await mkdtemp(path.join(tmpdir(), 'kx-vm-'));
  const vmNetns = `knv-${n}`;
  const peerNetns = `knp-${n}`;
  const vmIf = `knvif${n}`;
  const table = `knested_${n}`;
  const undo: { what: string; run: () => Promise<unknown> }[] = [];
  const children: ChildProcess[] = [];
  const teardown = async (): Promise<string[]> => {
    const failures: string[] = [];
    for (const step of undo.reverse()) {
      try {
        await step.run();
      } catch (err) {
        failures.push(`${step.what}: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    undo.length = 0;
    return failures;
  };

  try {
    undo.push({ what: 'temp dir', run: () => rm(dir, { recursive: true, force: true }) });
    const network = await neutron.createNetwork({ name: `knested-${n}` });
    undo.push({
      what: 'Neutron network and its ports',
      run: async () => {
        for (const p of await neutron.listPorts({ network_id: network.id })) {
          if (p.device_owner.startsWith('network:')) continue;
          await neutron.deletePort(p.id).catch(() => undefined);
        }
        await neutron.deleteNetwork(network.id);
      },
    });
    const cidr = await freeCidr(neutron);
    const prefix = cidr.replace(/\.0\/24$/, '');
    const [subnet] = await neutron.createSubnets([
      { network_id: network.id, ip_version: 4, cidr, gateway_ip: `${prefix}.1`, enable_dhcp: false },
    ]);
    if (subnet === undefined) throw new Error('no subnet created');
    const novaPort = (name: string) =>
      neutron.createPort({
        network_id: network.id,
        name: `knested-${n}-${name}`,
        device_owner: 'compute:nova',
        device_id: randomUUID(),
        'binding:host_id': opts.agentHost,
      });
    const vmPort = await novaPort('vm');
    const peerPort = await novaPort('peer');
    const vmIp = vmPort.fixed_ips[0]?.ip_address ?? '';
    const peerIp = peerPort.fixed_ips[0]?.ip_address ?? '';
    const mtu = String(network.mtu || 1500);

    // The peer: a tap the agent plugs.
    const tap = `tap${peerPort.id.slice(0, 11)}`;
    await sh('ip', ['netns', 'add', peerNetns]);
    undo.push({ what: `netns ${peerNetns}`, run: () => sh('ip', ['netns', 'del', peerNetns]) });
    await sh('ip', ['link', 'add', tap, 'mtu', mtu, 'type', 'veth', 'peer', 'name', `knpe${n}`]);
    undo.push({ what: tap, run: () => sh('ip', ['link', 'del', tap]).catch(() => undefined) });
    await nicInto(peerNetns, `knpe${n}`, peerPort.mac_address, `${peerIp}/24`, mtu);
    await sh('ip', ['link', 'set', tap, 'up']);
    const bridge = `brq${network.id.slice(0, 11)}`;
    for (let i = 0; ; i++) {
      const p = await neutron.showPort(peerPort.id);
      const hasBridge = await sh('ip', ['link', 'show', bridge]).then(
        () => true,
        () => false,
      );
      if (p.status === 'ACTIVE' && hasBridge) break;
      if (i > 120) throw new Error(`the agent did not plug ${tap} within 60 s (port ${p.status})`);
      await sleep(500);
    }
    await sh('ip', ['link', 'set', tap, 'master', bridge]);

    // The VM: its NIC in the bridge, under a name the agent leaves alone.
    await sh('ip', ['netns', 'add', vmNetns]);
    undo.push({ what: `netns ${vmNetns}`, run: () => sh('ip', ['netns', 'del', vmNetns]) });
    await sh('ip', ['link', 'add', vmIf, 'mtu', mtu, 'type', 'veth', 'peer', 'name', `knve${n}`]);
    undo.push({ what: vmIf, run: () => sh('ip', ['link', 'del', vmIf]).catch(() => undefined) });
    await nicInto(vmNetns, `knve${n}`, vmPort.mac_address, `${vmIp}/24`, mtu);
    await sh('ip', ['link', 'set', vmIf, 'master', bridge, 'up']);

    // Port security on the VM NIC.
    const rules = [
      `table bridge ${table} {`,
      '  set macs { type ether_addr; }',
      '  set ips { type ipv4_addr; }',
      '  chain forward {',
      '    type filter hook forward priority 0; policy accept;',
      `    iifname "${vmIf}" ether saddr != @macs drop`,
      `    iifname "${vmIf}" ether type arp arp saddr ip != @ips drop`,
      `    iifname "${vmIf}" ether type ip ip saddr != @ips drop`,
      '  }',
      '}',
    ].join('\n');
    await runWithInput('nft', ['-f', '-'], rules);
    undo.push({ what: `nft table bridge ${table}`, run: () => sh('nft', ['delete', 'table', 'bridge', table]) });
    const syncAntiSpoofing = async () => {
      const port = await neutron.showPort(vmPort.id);
      const macs = [...new Set([port.mac_address, ...port.allowed_address_pairs.map((p) => p.mac_address)])];
      const ips = [
        ...new Set([
          ...port.fixed_ips.map((f) => f.ip_address),
          ...port.allowed_address_pairs.map((p) => p.ip_address.replace(/\/32$/, '')),
        ]),
      ].filter((ip) => !ip.includes(':'));
      const script = [
        `flush set bridge ${table} macs`,
        `flush set bridge ${table} ips`,
        `add element bridge ${table} macs { ${macs.join(', ')} }`,
        `add element bridge ${table} ips { ${ips.join(', ')} }`,
      ].join('\n');
      await runWithInput('nft', ['-f', '-'], script);
      return { macs, ips };
    };
    await syncAntiSpoofing();

    // Neutron at the same URL inside the VM.
    const inVm = ['nsenter', `--net=/run/netns/${vmNetns}`];
    await sh('ip', ['-n', vmNetns, 'link', 'set', 'lo', 'up']);
    const relay = path.join(dir, 'neutron.sock');
    const port = String(opts.neutronPort);
    children.push(
      spawnRelay('socat', [`UNIX-LISTEN:${relay},fork`, `TCP:127.0.0.1:${port}`]),
      spawnRelay(inVm[0] ?? 'nsenter', [
        ...inVm.slice(1),
        'socat',
        `TCP-LISTEN:${port},bind=127.0.0.1,fork,reuseaddr`,
        `UNIX-CONNECT:${relay}`,
      ]),
    );
    undo.push({
      what: 'socat relays',
      run: async () => {
        for (const c of children) {
          if (c.pid !== undefined && c.exitCode === null && c.signalCode === null) process.kill(-c.pid, 'SIGTERM');
        }
      },
    });
    for (let i = 0; ; i++) {
      const ok = await sh(inVm[0] ?? 'nsenter', [
        ...inVm.slice(1),
        'curl',
        '-sf',
        '-o',
        '/dev/null',
        `http://127.0.0.1:${port}/`,
      ]).then(
        () => true,
        () => false,
      );
      if (ok) break;
      if (i > 50) throw new Error('Neutron is not reachable from inside the VM');
      await sleep(100);
    }

    return {
      n,
      dir,
      vmNetns,
      peerNetns,
      inVm,
      vmHost: `knvm-${n}`,
      network,
      subnet,
      vmPort,
      peerPort,
      peerIp,
      syncAntiSpoofing,
      teardown,
    };
  } catch (err) {
    const failures = await teardown();
    if (failures.length > 0) throw new AggregateError([err], `${err}; cleaning up failed too: ${failures.join('; ')}`);
    throw err;
  }
}

/** Moves `dev` into `netns` as eth0 with the port's MAC and address, up. */
async function nicInto(netns: string, dev: string, mac: string, address: string, mtu: string): Promise<void> {
  await sh('ip', ['link', 'set', dev, 'netns', netns]);
  await sh('ip', ['-n', netns, 'link', 'set', dev, 'name', 'eth0']);
  await sh('ip', ['-n', netns, 'link', 'set', 'eth0', 'address', mac, 'mtu', mtu, 'up']);
  await sh('ip', ['-n', netns, 'addr', 'add', address, 'dev', 'eth0']);
  await sh('ip', ['-n', netns, 'link', 'set', 'lo', 'up']);
}

function spawnRelay(file: string, args: string[]): ChildProcess {
  const child = spawn(file, args, { detached: true, stdio: 'ignore' });
  child.unref();
  return child;
}

function runWithInput(file: string, args: string[], input: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = execFile(file, args, { encoding: 'utf8', timeout: 30_000 }, (err, _out, stderr) =>
      err ? reject(new Error(`${file} ${args.join(' ')}: ${stderr || err.message}`)) : resolve(),
    );
    child.stdin?.end(input);
  });
}
