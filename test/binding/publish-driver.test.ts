/**
 * The driver's side of published ports (driver/published-ports.ts) over the in-memory store, with the real
 * NftPublisher on a fake `nft` that keeps its map elements: Docker's port map is read right (-p, -p IP:..., -P,
 * ranges, udp and sctp), ProgramExternalConnectivity publishes on the endpoint's bridge and address, Revoke and
 * DeleteEndpoint unpublish, a taken port is a 409 that changes nothing, bad port maps are 400s, and gc removes
 * the ports of an endpoint that no longer exists.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, test } from 'node:test';
import type { CommandRunner } from '../../src/binding/exec.ts';
import { NftPublisher, type PortPublisher, type PublishedPort } from '../../src/binding/publish.ts';
import { portMappings } from '../../src/driver/published-ports.ts';
import { KuryrError } from '../../src/errors.ts';
import { collectGarbage } from '../../src/reconcile/gc.ts';
import { endpointJoin, endpointLeave, networkCreate } from '../helpers/docker-sequence.ts';
import { makeDriver } from '../helpers/fakes.ts';

const PORTMAP = 'com.docker.network.portmap';

/** A fake `nft` holding map elements: enough of nft for NftPublisher (list as JSON, add/delete elements). */
function memoryNft(): { exec: CommandRunner; elements: Map<string, { map: string; comment: string; data: string }> } {
  const elements = new Map<string, { map: string; comment: string; data: string }>();
  let table = false;
  const exec: CommandRunner = async (_file, args, { input }) => {
    if (args[0] === '-j') {
      if (!table) throw Object.assign(new Error('exit 1'), { code: 1, stderr: 'Error: No such file or directory' });
      const elem = (map: string) =>
        [...elements.entries()]
          .filter(([, e]) => e.map === map)
          .map(([key, e]) => {
            const k = key.split(' . ').map((x) => (/^\d+$/.test(x) ? Number(x) : x));
            const d = e.data.split(' . ').map((x) => (/^\d+$/.test(x) ? Number(x) : x));
            return [{ elem: { val: { concat: k }, comment: e.comment } }, { concat: d }];
          });
      const t = { family: 'inet', table: 'kuryr_ts' };
      return {
        stdout: JSON.stringify({
          nftables: [
            { map: { ...t, name: 'publish_addr4', elem: elem('publish_addr4') } },
            { map: { ...t, name: 'publish_any4', elem: elem('publish_any4') } },
          ],
        }),
        stderr: '',
      };
    }
    for (const line of (input ?? '').split('\n')) {
      if (line.startsWith('add table')) table = true;
      if (line.startsWith('delete table')) {
        table = false;
        elements.clear();
      }
      const add = /^add element inet kuryr_ts (publish_\w+4) \{ (.*) comment "(.*)" : (.*) \}$/.exec(line);
      if (add) elements.set(add[2]!, { map: add[1]!, comment: add[3]!, data: add[4]! });
      const del = /^delete element inet kuryr_ts publish_\w+4 \{ (.*) \}$/.exec(line);
      if (del) elements.delete(del[1]!);
    }
    return { stdout: '', stderr: '' };
  };
  return { exec, elements };
}

type Env = Awaited<ReturnType<typeof makeDriver>>;

describe('published ports in the driver', () => {
  let env: Env;
  let nft: ReturnType<typeof memoryNft>;
  let publisher: PortPublisher;
  let listening: { proto: 'tcp' | 'udp' | 'sctp'; port: number }[];
  beforeEach(async () => {
    env = await makeDriver();
    nft = memoryNft();
    listening = [];
    publisher = new NftPublisher({
      exec: nft.exec,
      listeners: async () => listening,
      ephemeralRange: async () => [49153, 49160],
      setHairpin: async () => {},
      setRouteLocalnet: async () => {},
    });
    env.driver.runtime.publisher = publisher;
  });
  afterEach(() => env.close());

  test('-p, -p IP:..., -P and udp/sctp are published on the endpoint; Revoke and DeleteEndpoint remove them', async () => {
    const net = await networkCreate(env.driver, { subnet: '10.60.0.0/24' });
    const ep = await endpointJoin(env.driver, net);
    const [port] = await env.neutron.listPorts({ device_id: ep.id });
    const options = {
      [PORTMAP]: [
        { Proto: 6, IP: '', Port: 80, HostIP: '', HostPort: 8080, HostPortEnd: 8080 },
        { Proto: 17, IP: '', Port: 53, HostIP: '192.0.2.9', HostPort: 5353, HostPortEnd: 5353 },
        { Proto: 132, IP: '', Port: 9, HostIP: '', HostPort: 0, HostPortEnd: 0 },
      ],
      'com.docker.network.endpoint.exposedports': [{ Proto: 6, Port: 80 }],
    };
    await env.driver.programExternalConnectivity(ep.id, options);
    const list = await publisher.list();
    const ip = ep.address.split('/')[0];
    const bridge = `brq${port!.network_id.slice(0, 11)}`;
    const summary = (p: PublishedPort) =>
      `${p.proto} ${p.hostIp ?? '*'}:${p.hostPort} ${p.containerIp}:${p.containerPort} ${p.bridge}`;
    const sctp = list.find((p) => p.proto === 'sctp');
    assert.ok(sctp && sctp.hostPort >= 49153 && sctp.hostPort <= 49160, '-P: an ephemeral port');
    assert.deepEqual(list.map(summary).sort(), [
      `sctp *:${sctp.hostPort} ${ip}:9 ${bridge}`,
      `tcp *:8080 ${ip}:80 ${bridge}`,
      `udp 192.0.2.9:5353 ${ip}:53 ${bridge}`,
    ]);
    // Docker retries: nothing changes, the -P port stays.
    await env.driver.programExternalConnectivity(ep.id, options);
    assert.deepEqual((await publisher.list()).map(summary).sort(), list.map(summary).sort());

    await env.driver.revokeExternalConnectivity(ep.id);
    assert.deepEqual(await publisher.list(), []);
    await env.driver.programExternalConnectivity(ep.id, options);
    assert.equal((await publisher.list()).length, 3);
    // DeleteEndpoint without a Revoke first (a daemon that died meanwhile).
    await env.driver.deleteEndpoint(ep.id);
    assert.deepEqual(await publisher.list(), []);
  });

  test("the network's bridge.name and host_binding_ipv4 options: its own bridge, its default host address", async () => {
    const net = await networkCreate(env.driver, {
      subnet: '10.64.0.0/24',
      opts: {
        'com.docker.network.bridge.name': 'kxpubbr0',
        'com.docker.network.bridge.host_binding_ipv4': '192.0.2.7',
      },
    });
    const ep = await endpointJoin(env.driver, net);
    await env.driver.programExternalConnectivity(ep.id, {
      [PORTMAP]: [
        { Proto: 6, Port: 80, HostIP: '', HostPort: 8080, HostPortEnd: 8080 },
        { Proto: 6, Port: 81, HostIP: '192.0.2.9', HostPort: 8081, HostPortEnd: 8081 },
      ],
    });
    const summary = (p: PublishedPort) => `${p.hostIp ?? '*'}:${p.hostPort} ${p.bridge}`;
    assert.deepEqual((await publisher.list()).map(summary).sort(), [
      '192.0.2.7:8080 kxpubbr0',
      '192.0.2.9:8081 kxpubbr0',
    ]);
    await env.driver.revokeExternalConnectivity(ep.id);
    assert.deepEqual(await publisher.list(), []);
  });

  test('a port already taken is a 409 and changes nothing; another endpoint may take it once it is free', async () => {
    const net = await networkCreate(env.driver, { subnet: '10.61.0.0/24' });
    const a = await endpointJoin(env.driver, net);
    const b = await endpointJoin(env.driver, net);
    const p8080 = { [PORTMAP]: [{ Proto: 6, Port: 80, HostIP: '', HostPort: 8080, HostPortEnd: 8080 }] };
    await env.driver.programExternalConnectivity(a.id, p8080);
    const before = [...nft.elements.keys()];
    await assert.rejects(env.driver.programExternalConnectivity(b.id, p8080), (err: unknown) => {
      assert.ok(err instanceof KuryrError);
      assert.equal(err.code, 'KURYR_ERR_CONFLICT');
      assert.match(err.message, /0\.0\.0\.0:8080\/tcp is already published by endpoint/);
      return true;
    });
    listening = [{ proto: 'tcp', port: 9090 }];
    await assert.rejects(
      env.driver.programExternalConnectivity(b.id, {
        [PORTMAP]: [
          { Proto: 6, Port: 81, HostIP: '', HostPort: 8081, HostPortEnd: 8081 },
          { Proto: 6, Port: 90, HostIP: '', HostPort: 9090, HostPortEnd: 9090 },
        ],
      }),
      /host process already uses 0\.0\.0\.0:9090\/tcp/,
    );
    assert.deepEqual([...nft.elements.keys()], before, 'nothing of the refused requests was published');
    await endpointLeave(env.driver, a);
    await env.driver.programExternalConnectivity(b.id, p8080);
    assert.deepEqual(
      (await publisher.list()).map((p) => p.endpointId),
      [b.id],
    );
  });

  test('gc removes the published ports of an endpoint whose port is gone', async () => {
    const net = await networkCreate(env.driver, { subnet: '10.62.0.0/24' });
    const ep = await endpointJoin(env.driver, net);
    const live = await endpointJoin(env.driver, net);
    const map = (hostPort: number) => ({
      [PORTMAP]: [{ Proto: 6, Port: 80, HostIP: '', HostPort: hostPort, HostPortEnd: hostPort }],
    });
    await env.driver.programExternalConnectivity(ep.id, map(8080));
    await env.driver.programExternalConnectivity(live.id, map(8081));
    // The endpoint's port disappears behind the plugin's back (a crash between DeleteEndpoint and the rules).
    const [port] = await env.neutron.listPorts({ device_id: ep.id });
    await env.neutron.deletePort(port!.id);
    const noDevices = { runJson: async () => [], deleteLink: async () => true };
    const opts = { dryRun: true, graceSeconds: 0, docker: undefined, ownsBridges: true, owner: 'kuryr' };
    const planned = await collectGarbage(env.driver.runtime, noDevices, opts);
    assert.deepEqual(
      planned.actions.filter((a) => a.kind === 'published-port').map((a) => [a.id, a.result]),
      [[ep.id, 'planned']],
    );
    assert.equal((await publisher.list()).length, 2, 'dry run');
    await collectGarbage(env.driver.runtime, noDevices, { ...opts, dryRun: false });
    assert.deepEqual(
      (await publisher.list()).map((p) => p.endpointId),
      [live.id],
    );
  });

  test('bad port maps are refused (400) before anything is published', async () => {
    const net = await networkCreate(env.driver, { subnet: '10.63.0.0/24' });
    const ep = await endpointJoin(env.driver, net);
    for (const entry of [
      { Proto: 1, Port: 80, HostPort: 8080 },
      { Proto: 6, Port: 0, HostPort: 8080 },
      { Proto: 6, Port: 80, HostPort: 70000 },
      { Proto: 6, Port: 80, HostPort: 9000, HostPortEnd: 8000 },
      { Proto: 6, Port: 80, HostIP: 'fd00::1', HostPort: 8080 },
      { Proto: 6, Port: 80, HostIP: 'nonsense', HostPort: 8080 },
    ]) {
      await assert.rejects(
        env.driver.programExternalConnectivity(ep.id, { [PORTMAP]: [entry] }),
        (err: unknown) => err instanceof KuryrError && err.code === 'KURYR_ERR_INVALID_VALUE',
        JSON.stringify(entry),
      );
    }
    await assert.rejects(env.driver.programExternalConnectivity(ep.id, { [PORTMAP]: 'x' }), /must be a list/);
    assert.equal(nft.elements.size, 0);
  });

  test("Docker's port map: ranges, any address, -P", () => {
    assert.deepEqual(
      portMappings({
        [PORTMAP]: [
          { Proto: 6, IP: '', Port: 80, HostIP: '0.0.0.0', HostPort: 8000, HostPortEnd: 8010 },
          { Proto: 17, IP: '', Port: 53, HostIP: '', HostPort: 0, HostPortEnd: 0 },
          { Proto: 6, Port: 22, HostIP: '127.0.0.1', HostPort: 2222 },
        ],
      }),
      [
        { proto: 'tcp', containerPort: 80, hostPort: 8000, hostPortEnd: 8010 },
        { proto: 'udp', containerPort: 53, hostPort: 0, hostPortEnd: 0 },
        { proto: 'tcp', containerPort: 22, hostIp: '127.0.0.1', hostPort: 2222, hostPortEnd: 2222 },
      ],
    );
    assert.deepEqual(portMappings({}), []);
    assert.deepEqual(portMappings(null), []);
  });
});
