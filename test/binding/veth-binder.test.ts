/**
 * VethBinder against the real kernel (root): veth pairs, the `bridge` and `tap` vif types, idempotency and
 * rollback. Every device name derives from a fresh random UUID; `after` deletes exactly those names.
 */
import assert from 'node:assert/strict';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ChildProcess } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { BindingError } from '../../src/binding/errors.ts';
import { type CommandRunner, execRunner } from '../../src/binding/exec.ts';
import { IpCommand } from '../../src/binding/ip-command.ts';
import { bridgeName, interfaceNames } from '../../src/binding/names.ts';
import { VethBinder } from '../../src/binding/veth-binder.ts';
import { deleteLinks, existingLinks, ip, kernelSkipReason, makePort, randomId } from './kernel.ts';
import { vifPortOf } from '../../src/driver/port-drivers/veth.ts';

const skip = await kernelSkipReason();

describe('VethBinder (real kernel)', { skip }, () => {
  // a bindir that does not exist: no bind script for any other vif type, whatever /usr/libexec/kuryr holds here
  const binder = new VethBinder({ bindir: path.join(tmpdir(), `kuryr-no-bindir-${randomId()}`) });
  /** Every device name a test here may create: deleted in `after`, whatever happened. */
  const created = new Set<string>();
  const track = (...names: string[]) => {
    for (const n of names) created.add(n);
  };
  const portFor = (overrides: Parameters<typeof makePort>[0] = {}) => {
    const port = makePort(overrides);
    const names = interfaceNames(port.id);
    track(names.host, names.container, bridgeName(port.network_id));
    return { port, names, bridge: bridgeName(port.network_id) };
  };

  before(async () => {
    // fresh UUIDs cannot name an existing device, but make sure before touching anything
    assert.deepEqual(await existingLinks(created), []);
  });

  after(async () => {
    await deleteLinks(created);
    assert.deepEqual(await existingLinks(created), [], 'test devices left behind');
  });

  test("bridge named by the network's options, enable_icc=false: an isolated port of that bridge", async () => {
    const { port, names } = portFor();
    const bridge = `kxb${randomId().slice(0, 8)}`;
    track(bridge);
    await binder.bind({ ...vifPortOf(port), mtu: 1500, bridge, icc: false });
    assert.equal((await ip.getLink(names.host))?.master, bridge);
    const [detail] = (await ip.runJson(['-d', 'link', 'show', 'dev', names.host])) as Array<{
      linkinfo?: { info_slave_data?: { isolated?: unknown } };
    }>;
    assert.equal(detail?.linkinfo?.info_slave_data?.isolated, true);
    // The default (ICC on) leaves the port an ordinary one.
    const other = portFor({ network_id: port.network_id });
    await binder.bind({ ...vifPortOf(other.port), mtu: 1500, bridge });
    const [plain] = (await ip.runJson(['-d', 'link', 'show', 'dev', other.names.host])) as Array<{
      linkinfo?: { info_slave_data?: { isolated?: unknown } };
    }>;
    assert.equal(plain?.linkinfo?.info_slave_data?.isolated, false);
    await binder.unbind(vifPortOf(port));
    await binder.unbind(vifPortOf(other.port));
  });

  test('bridge: creates the pair, sets MTU and MAC, enslaves the host end to brq<net[:11]>', async () => {
    const { port, names, bridge } = portFor();
    assert.equal(await ip.getLink(bridge), undefined);

    const result = await binder.bind({ ...vifPortOf(port), mtu: 1450 });
    assert.deepEqual(result, names);

    const host = await ip.getLink(names.host);
    const container = await ip.getLink(names.container);
    assert.ok(host && container, 'both ends exist');
    assert.equal(host.kind, 'veth');
    assert.equal(host.peer, names.container);
    assert.equal(container.peer, names.host);
    assert.equal(host.mtu, 1450);
    assert.equal(container.mtu, 1450);
    assert.equal(container.address, port.mac_address.toLowerCase());
    assert.notEqual(port.mac_address, port.mac_address.toLowerCase(), 'the test MAC is upper case');
    assert.ok(host.flags.includes('UP'), 'host end up');
    assert.equal(host.master, bridge);
    assert.ok(!container.flags.includes('UP'), 'container end left for Docker to bring up');
    assert.deepEqual(await ip.getAddresses(names.container), [], 'no address on the container end');

    const br = await ip.getLink(bridge);
    assert.equal(br?.kind, 'bridge');
    assert.ok(br?.flags.includes('UP'), 'bridge up');
    assert.equal(br?.kindData.forward_delay, 0);
    assert.equal(br?.kindData.stp_state, 0);

    // a retried request reuses the pair and changes nothing
    assert.deepEqual(await binder.bind({ ...vifPortOf(port), mtu: 1450 }), names);
    const again = await ip.getLink(names.host);
    assert.equal(again?.ifindex, host.ifindex, 'same device, not re-created');
    assert.equal(again?.master, bridge);
    assert.equal((await ip.getLink(names.container))?.address, port.mac_address.toLowerCase());

    await binder.unbind(vifPortOf(port));
    assert.deepEqual(await existingLinks([names.host, names.container]), [], 'unbind removes both ends');
    await binder.unbind(vifPortOf(port)); // already gone: still success
    assert.equal((await ip.listPorts(bridge)).length, 0, 'the bridge has no ports left');
  });

  test('a second bind repairs MTU and MAC of a reused pair', async () => {
    const { port, names } = portFor({ 'binding:vif_type': 'tap' });
    await binder.bind({ ...vifPortOf(port), mtu: 1400 });
    await ip.run(['link', 'set', 'dev', names.container, 'mtu', '1300', 'address', '02:00:00:00:00:01']);
    await binder.bind({ ...vifPortOf(port), mtu: 1400 });
    const container = await ip.getLink(names.container);
    assert.equal(container?.mtu, 1400);
    assert.equal(container?.address, port.mac_address.toLowerCase());
    await binder.unbind(vifPortOf(port));
  });

  test('concurrent binds of one port both succeed with one pair', async () => {
    const { port, names, bridge } = portFor();
    const results = await Promise.all([
      binder.bind({ ...vifPortOf(port), mtu: 1500 }),
      binder.bind({ ...vifPortOf(port), mtu: 1500 }),
    ]);
    assert.deepEqual(results, [names, names]);
    assert.equal((await ip.getLink(names.host))?.master, bridge);
    await binder.unbind(vifPortOf(port));
  });

  test('two ports of one network share the bridge', async () => {
    const network_id = randomId();
    const a = portFor({ network_id });
    const b = portFor({ network_id });
    await binder.bind({ ...vifPortOf(a.port), mtu: 1500 });
    await binder.bind({ ...vifPortOf(b.port), mtu: 1500 });
    const members = (await ip.listPorts(a.bridge)).map((l) => l.ifname).sort();
    assert.deepEqual(members, [a.names.host, b.names.host].sort());
    await binder.unbind(vifPortOf(a.port));
    assert.deepEqual(
      (await ip.listPorts(a.bridge)).map((l) => l.ifname),
      [b.names.host],
      'unbinding one port leaves the other attached',
    );
    await binder.unbind(vifPortOf(b.port));
  });

  test('a bind on a bridge it knows is one ip process, an unbind one', async () => {
    const runs: string[][] = [];
    const counting: CommandRunner = (file, args, options) => {
      runs.push([file, ...args]);
      return execRunner(file, args, options);
    };
    const counted = new VethBinder({ ip: new IpCommand({ exec: counting }), owner: 'kxtest' });
    const network_id = randomId();
    const a = portFor({ network_id });
    const b = portFor({ network_id });
    await counted.bind({ ...vifPortOf(a.port), mtu: 1500 }); // the first bind looks the bridge up (and makes it)
    runs.length = 0;
    await counted.bind({ ...vifPortOf(b.port), mtu: 1500, icc: false });
    assert.deepEqual(runs, [['ip', '-batch', '-']], 'one ip -batch for pair, MTU, MAC, alias, port, isolation, up');
    const host = await ip.getLink(b.names.host);
    assert.equal(host?.master, b.bridge);
    assert.ok(host?.flags.includes('UP'));
    runs.length = 0;
    await counted.unbind(vifPortOf(b.port));
    assert.equal(runs.length, 1);
    assert.deepEqual(await existingLinks([b.names.host, b.names.container]), []);
    await counted.unbind(vifPortOf(a.port));
  });

  test('with its long-lived ip, a bind on a bridge it knows and an unbind start no process', async () => {
    const proto = ChildProcess.prototype as unknown as { spawn: (options: { args: string[] }) => unknown };
    const original = proto.spawn;
    const runs: string[] = [];
    const own = new VethBinder({ owner: 'kxtest' });
    const network_id = randomId();
    const a = portFor({ network_id });
    const b = portFor({ network_id });
    await own.bind({ ...vifPortOf(a.port), mtu: 1500 }); // looks the bridge up, starts the long-lived ip
    proto.spawn = function (this: unknown, options: { args: string[] }) {
      runs.push(options.args.join(' '));
      return original.call(this, options);
    };
    try {
      await own.bind({ ...vifPortOf(b.port), mtu: 1500, icc: false });
      const host = await ip.getLink(b.names.host);
      assert.equal(host?.master, b.bridge);
      assert.ok(host?.flags.includes('UP'));
      assert.equal((await ip.getLink(b.names.container))?.address, b.port.mac_address.toLowerCase());
      runs.length = 0; // the checks above ran ip
      await own.unbind(vifPortOf(b.port));
      await own.bind({ ...vifPortOf(b.port), mtu: 1500 });
      await own.unbind(vifPortOf(b.port));
    } finally {
      proto.spawn = original;
    }
    assert.deepEqual(runs, [], 'no process started');
    assert.deepEqual(await existingLinks([b.names.host, b.names.container]), []);
    await own.unbind(vifPortOf(a.port));
  });

  test('a bridge it knew, deleted behind its back, is made again by the next bind', async () => {
    const network_id = randomId();
    const a = portFor({ network_id });
    const b = portFor({ network_id });
    await binder.bind({ ...vifPortOf(a.port), mtu: 1500 });
    await binder.unbind(vifPortOf(a.port));
    await deleteLinks([a.bridge]);
    await binder.bind({ ...vifPortOf(b.port), mtu: 1500 });
    assert.equal((await ip.getLink(b.bridge))?.kind, 'bridge');
    assert.equal((await ip.getLink(b.names.host))?.master, b.bridge);
    await binder.unbind(vifPortOf(b.port));
  });

  test('a bridge it knew, replaced by another kind of device: refused, the new pair removed, the device untouched', async () => {
    const network_id = randomId();
    const a = portFor({ network_id });
    const b = portFor({ network_id });
    await binder.bind({ ...vifPortOf(a.port), mtu: 1500 });
    await binder.unbind(vifPortOf(a.port));
    await deleteLinks([a.bridge]);
    const peer = `kxq${a.bridge.slice(3, 14)}`;
    track(peer);
    await ip.run(['link', 'add', 'dev', a.bridge, 'type', 'veth', 'peer', 'name', peer]);
    const err = await binder.bind({ ...vifPortOf(b.port), mtu: 1500 }).catch((e: unknown) => e);
    assert.ok(err instanceof BindingError, String(err));
    assert.equal(err.reason, 'device-conflict');
    assert.match(err.message, new RegExp(a.bridge));
    assert.deepEqual(await existingLinks([b.names.host, b.names.container]), [], 'the new pair was removed');
    const device = await ip.getLink(a.bridge);
    assert.equal(device?.kind, 'veth');
    assert.ok(!device?.flags.includes('UP'), 'not brought up');
    await deleteLinks([a.bridge]);
  });

  test('tap: the host end is up but not enslaved', async () => {
    const { port, names, bridge } = portFor({ 'binding:vif_type': 'tap' });
    await binder.bind({ ...vifPortOf(port), mtu: 1500 });
    const host = await ip.getLink(names.host);
    assert.equal(host?.master, undefined);
    assert.ok(host?.flags.includes('UP'));
    assert.equal(await ip.getLink(bridge), undefined, 'no bridge for tap');
    await binder.unbind(vifPortOf(port));
    assert.deepEqual(await existingLinks([names.host, names.container]), []);
  });

  // (ovs: test/binding/vif-ovs.test.ts; bind scripts: test/binding/vif-hook.test.ts)
  for (const vifType of ['unbound', 'binding_failed', 'midonet', '']) {
    test(`vif_type ${JSON.stringify(vifType)} without a bind script fails, naming the type, and leaves no device`, async () => {
      const { port, names, bridge } = portFor({ 'binding:vif_type': vifType });
      const err = await binder.bind({ ...vifPortOf(port), mtu: 1500 }).catch((e: unknown) => e);
      assert.ok(err instanceof BindingError, String(err));
      assert.equal(err.reason, 'vif-type-unsupported');
      assert.equal(
        err.message,
        `vif_type(${vifType || 'unbound'}) is not supported. A binding script for this type can't be found`,
      );
      assert.deepEqual(await existingLinks([names.host, names.container, bridge]), []);
    });
  }

  test('a failure after creating the pair removes it (rollback)', async () => {
    const { port, names, bridge } = portFor();
    // occupy the bridge name with a device that is not a bridge (a veth pair of our own)
    const peer = `kxp${bridge.slice(3, 14)}`;
    track(peer);
    await ip.run(['link', 'add', 'dev', bridge, 'type', 'veth', 'peer', 'name', peer]);
    const err = await binder.bind({ ...vifPortOf(port), mtu: 1500 }).catch((e: unknown) => e);
    assert.ok(err instanceof BindingError, String(err));
    assert.equal(err.reason, 'device-conflict');
    assert.match(err.message, new RegExp(bridge));
    assert.deepEqual(await existingLinks([names.host, names.container]), [], 'the new pair was removed');
    assert.equal((await ip.getLink(bridge))?.kind, 'veth', 'the device that was there is untouched');
    await deleteLinks([bridge]);
  });

  test('a device of our name that is not our pair is neither reused nor deleted', async () => {
    const { port, names } = portFor({ 'binding:vif_type': 'tap' });
    const other = `kxo${names.host.slice(3)}`;
    track(other);
    await ip.run(['link', 'add', 'dev', names.host, 'type', 'veth', 'peer', 'name', other]);
    const err = await binder.bind({ ...vifPortOf(port), mtu: 1500 }).catch((e: unknown) => e);
    assert.ok(err instanceof BindingError, String(err));
    assert.equal(err.reason, 'device-conflict');
    assert.equal((await ip.getLink(names.host))?.peer, other, 'still the original device');
    await deleteLinks([names.host]);
  });

  test('bad input is refused before anything is created', async () => {
    const badMac = portFor({ mac_address: 'zz:zz' });
    await assert.rejects(binder.bind({ ...vifPortOf(badMac.port), mtu: 1500 }), BindingError);
    const badMtu = portFor();
    await assert.rejects(binder.bind({ ...vifPortOf(badMtu.port), mtu: 10 }), BindingError);
    const badNet = portFor();
    badNet.port.network_id = 'net;reboot';
    await assert.rejects(binder.bind({ ...vifPortOf(badNet.port), mtu: 1500 }), /invalid network ID/);
    const names = [badMac, badMtu, badNet].flatMap((p) => [p.names.host, p.names.container]);
    assert.deepEqual(await existingLinks(names), []);
  });

  test('unbind of a port that was never bound succeeds', async () => {
    const { port, names } = portFor();
    await binder.unbind(vifPortOf(port));
    assert.deepEqual(await existingLinks([names.host]), []);
  });
});
