// Which peers count as "this host": loopback, and the host's interface addresses, IPv4-mapped IPv6 and IPv6 zones
// included; the addresses are read again when an unknown peer appears (rate-limited) or when they are old.
import assert from 'node:assert/strict';
import net from 'node:net';
import type os from 'node:os';
import { test } from 'node:test';
import { acceptOnlyLocalPeers, canonicalAddress, LocalAddresses } from '../../src/plugin/local-peers.ts';

const iface = (address: string): os.NetworkInterfaceInfo =>
  ({ address, family: address.includes(':') ? 'IPv6' : 'IPv4' }) as os.NetworkInterfaceInfo;

test('canonical form: mapped IPv4, zones, case', () => {
  assert.equal(canonicalAddress('::ffff:192.0.2.1'), '192.0.2.1');
  assert.equal(canonicalAddress('FE80::1%eth0'), 'fe80::1');
  assert.equal(canonicalAddress('not an address'), undefined);
});

test('loopback and interface addresses are local, others are not; new addresses are seen', () => {
  let now = 0;
  let reads = 0;
  let addresses = [iface('192.0.2.1'), iface('fe80::1%eth0'), iface('2001:db8::1')];
  const local = new LocalAddresses({
    read: () => {
      reads++;
      return { eth0: addresses };
    },
    now: () => now,
  });
  for (const a of ['127.0.0.1', '127.5.5.5', '::1', '::ffff:127.0.0.1']) assert.ok(local.isLocal(a), a);
  for (const a of ['192.0.2.1', '::ffff:192.0.2.1', 'fe80::1', '2001:DB8::1']) assert.ok(local.isLocal(a), a);
  for (const a of ['192.0.2.2', '::ffff:192.0.2.2', '2001:db8::2', undefined, 'garbage'])
    assert.ok(!local.isLocal(a), String(a));
  const before = reads;
  // A burst of foreign peers within a second re-reads nothing.
  for (let i = 0; i < 100; i++) local.isLocal('198.51.100.7');
  assert.equal(reads, before);
  // An address added to the host counts once an unknown peer triggers a re-read (a second later).
  addresses = [...addresses, iface('198.51.100.9')];
  now += 1_500;
  assert.ok(local.isLocal('198.51.100.9'));
  // A removed address stops counting once the read is older than 10 s.
  addresses = [iface('192.0.2.1')];
  now += 11_000;
  assert.ok(!local.isLocal('198.51.100.9'));
});

test('the guard closes foreign connections before anything is read, and reports each address once', async () => {
  const server = net.createServer((s) => s.end('hello\n'));
  const refused: [string, boolean][] = [];
  // A foreign peer cannot be made up on loopback: this guard's view calls every peer foreign instead (the real
  // refusal, from another network namespace, is in listen-remote.test.ts).
  const local = new LocalAddresses({ read: () => ({}) });
  Object.defineProperty(local, 'isLocal', { value: () => false });
  acceptOnlyLocalPeers(server, { local, onRefused: (a, first) => refused.push([a, first]) });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  for (let i = 0; i < 2; i++) {
    const got = await new Promise<string>((resolve) => {
      const c = net.connect(port, '127.0.0.1');
      let text = '';
      c.on('data', (d) => {
        text += String(d);
      });
      c.on('close', () => resolve(text));
      c.on('error', () => undefined);
    });
    assert.equal(got, '', 'closed without the server writing anything');
  }
  assert.deepEqual(refused, [
    ['127.0.0.1', true],
    ['127.0.0.1', false],
  ]);
  await new Promise((r) => server.close(r));
});
