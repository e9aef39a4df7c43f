/**
 * LinuxBridgeAgent against the real kernel (root). The bridge name derives from a fresh random UUID and the
 * addresses come from a random 10.2xx.y.0/24 and fd00:xxxx:yyyy::/64 checked to be unused on this host.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { BindingError } from '../../src/binding/errors.ts';
import { LinuxBridgeAgent } from '../../src/binding/linux-bridge-agent.ts';
import { bridgeName } from '../../src/binding/names.ts';
import { deleteLinks, existingLinks, freeSubnets, ip, kernelSkipReason, randomId, type TestSubnets } from './kernel.ts';

const skip = await kernelSkipReason();

/** The bridge's global addresses as sorted `addr/len` strings. */
async function globalAddresses(bridge: string): Promise<string[]> {
  return (await ip.getAddresses(bridge))
    .filter((a) => a.scope === 'global')
    .map((a) => `${a.local}/${a.prefixlen}`)
    .sort();
}

describe('LinuxBridgeAgent (real kernel)', { skip }, () => {
  const agent = new LinuxBridgeAgent();
  const created = new Set<string>();
  let net: TestSubnets;
  const newNetwork = () => {
    const networkId = randomId();
    const bridge = bridgeName(networkId);
    created.add(bridge);
    return { networkId, bridge };
  };

  before(async () => {
    net = await freeSubnets();
  });

  after(async () => {
    await deleteLinks(created);
    assert.deepEqual(await existingLinks(created), [], 'test bridges left behind');
  });

  test('a bridge named by the options: made and deleted when ours; a device of that name not ours is refused', async () => {
    const owned = new LinuxBridgeAgent({ owner: 'kxtest', isolation: null });
    const networkId = randomId();
    const bridge = `kxn${randomId().slice(0, 8)}`;
    const foreign = `kxf${randomId().slice(0, 8)}`;
    created.add(bridge);
    created.add(foreign);
    await owned.ensureNetwork({ networkId, mtu: 1500, gateways: [], bridge });
    assert.equal((await ip.getLink(bridge))?.kind, 'bridge');
    assert.equal(await ip.getLink(bridgeName(networkId)), undefined, 'no brq bridge besides it');
    await owned.ensureNetwork({ networkId, mtu: 1500, gateways: [], bridge }); // ours: reused (a restart)
    await owned.removeNetwork(networkId, bridge);
    assert.equal(await ip.getLink(bridge), undefined);

    await ip.run(['link', 'add', 'name', foreign, 'type', 'bridge']);
    const refused = (err: unknown) => err instanceof BindingError && /not made by this plugin/.test(err.message);
    await assert.rejects(owned.ensureNetwork({ networkId, mtu: 1500, gateways: [], bridge: foreign }), refused);
    await assert.rejects(owned.removeNetwork(networkId, foreign), refused);
    assert.equal((await ip.getLink(foreign))?.kind, 'bridge', 'the foreign bridge is left alone');
  });

  test('ensureNetwork creates the bridge with MTU, both gateways, up; repairs; removeNetwork deletes', async () => {
    const { networkId, bridge } = newNetwork();
    const v4 = `${net.v4}.1`;
    const v6 = `${net.v6}:1`;
    await agent.ensureNetwork({
      networkId,
      mtu: 1450,
      gateways: [
        { address: v4, prefixLength: 24 },
        { address: v6, prefixLength: 64 },
      ],
    });
    const br = await ip.getLink(bridge);
    assert.equal(br?.kind, 'bridge');
    assert.equal(br?.mtu, 1450);
    assert.ok(br?.flags.includes('UP'));
    assert.equal(br?.kindData.forward_delay, 0);
    assert.equal(br?.kindData.stp_state, 0);
    assert.deepEqual(await globalAddresses(bridge), [`${v4}/24`, `${v6}/64`].sort());
    const v6Addr = (await ip.getAddresses(bridge)).find((a) => a.local === v6);
    assert.equal(v6Addr?.tentative, false, 'gateway usable at once (nodad)');

    // the same call again changes nothing
    const ifindex = br?.ifindex;
    await agent.ensureNetwork({
      networkId,
      mtu: 1450,
      gateways: [
        { address: v4, prefixLength: 24 },
        { address: v6, prefixLength: 64 },
      ],
    });
    assert.equal((await ip.getLink(bridge))?.ifindex, ifindex);
    assert.deepEqual(await globalAddresses(bridge), [`${v4}/24`, `${v6}/64`].sort());

    // a changed gateway list (and MTU) is applied: new ones added, old ones removed
    const v4b = `${net.v4}.254`;
    const v6b = `${net.v6}:fe`;
    await agent.ensureNetwork({
      networkId,
      mtu: 1400,
      gateways: [
        { address: v4b, prefixLength: 24 },
        { address: v6b.replace('::', ':0:0:0:0:').toUpperCase(), prefixLength: 64 }, // non-canonical spelling
      ],
    });
    assert.equal((await ip.getLink(bridge))?.mtu, 1400);
    assert.deepEqual(await globalAddresses(bridge), [`${v4b}/24`, `${v6b}/64`].sort());

    await agent.removeNetwork(networkId);
    assert.equal(await ip.getLink(bridge), undefined);
    await agent.removeNetwork(networkId); // missing: still success
  });

  test('ensureNetwork repairs a bridge that was taken down, given STP, and strangers addresses', async () => {
    const { networkId, bridge } = newNetwork();
    const spec = {
      networkId,
      mtu: 1500,
      gateways: [
        { address: `${net.v4}.1`, prefixLength: 24 },
        { address: `${net.v6}:1`, prefixLength: 64 },
      ],
    };
    await agent.ensureNetwork(spec);
    // Damage it: an unwanted primary v4 address of the same subnet (deleting it takes the secondaries with
    // it), an unwanted v4 prefix length, STP on, and down (which flushes IPv6 addresses).
    await ip.run(['addr', 'flush', 'dev', bridge]);
    await ip.run(['addr', 'add', `${net.v4}.77/24`, 'dev', bridge]);
    await ip.run(['addr', 'add', `${net.v4}.1/24`, 'dev', bridge]);
    await ip.run(['addr', 'add', `${net.v4}.1/25`, 'dev', bridge]);
    await ip.run(['link', 'set', 'dev', bridge, 'type', 'bridge', 'stp_state', '1']);
    await ip.run(['link', 'set', 'dev', bridge, 'type', 'bridge', 'forward_delay', '1500']);
    await ip.run(['link', 'set', 'dev', bridge, 'down']);

    await agent.ensureNetwork(spec);
    const br = await ip.getLink(bridge);
    assert.ok(br?.flags.includes('UP'));
    assert.equal(br?.kindData.stp_state, 0);
    assert.equal(br?.kindData.forward_delay, 0);
    assert.deepEqual(await globalAddresses(bridge), [`${net.v4}.1/24`, `${net.v6}:1/64`].sort());
    await agent.removeNetwork(networkId);
  });

  test('a network without gateways gets a bridge with no global address', async () => {
    const { networkId, bridge } = newNetwork();
    await agent.ensureNetwork({ networkId, mtu: 1500, gateways: [{ address: `${net.v4}.1`, prefixLength: 24 }] });
    await agent.ensureNetwork({ networkId, mtu: 1500, gateways: [] });
    assert.deepEqual(await globalAddresses(bridge), []);
    await agent.removeNetwork(networkId);
  });

  test('invalid input is refused before anything is created', async () => {
    const { networkId, bridge } = newNetwork();
    const bad = [
      [{ address: '10.0.0.300', prefixLength: 24 }],
      [{ address: '10.0.0.1; reboot', prefixLength: 24 }],
      [{ address: `${net.v4}.1`, prefixLength: 33 }],
      [{ address: `${net.v6}:1`, prefixLength: 0 }],
    ];
    for (const gateways of bad) {
      await assert.rejects(agent.ensureNetwork({ networkId, mtu: 1500, gateways }), BindingError);
    }
    await assert.rejects(agent.ensureNetwork({ networkId, mtu: 40, gateways: [] }), BindingError);
    await assert.rejects(agent.ensureNetwork({ networkId: '../x', mtu: 1500, gateways: [] }), BindingError);
    assert.equal(await ip.getLink(bridge), undefined);
  });

  test('removeNetwork refuses to delete a device of that name that is not a bridge', async () => {
    const { networkId, bridge } = newNetwork();
    const peer = `kxp${bridge.slice(3)}`;
    created.add(peer);
    await ip.run(['link', 'add', 'dev', bridge, 'type', 'veth', 'peer', 'name', peer]);
    const err = await agent.removeNetwork(networkId).catch((e: unknown) => e);
    assert.ok(err instanceof BindingError);
    assert.equal(err.reason, 'device-conflict');
    assert.equal((await ip.getLink(bridge))?.kind, 'veth');
    await deleteLinks([bridge]);
  });
});
