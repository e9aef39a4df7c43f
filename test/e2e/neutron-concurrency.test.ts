// Concurrency on a real Neutron (whose CPU is the limit on these machines): 20 `docker run` at once, then
// 20 `docker rm -f` at once; and two `docker network create` of the same Neutron network at once.
// No deadlock, no failed call, distinct addresses, nothing duplicated, nothing leaked.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { e2eFixture } from '../helpers/e2e.ts';
import { neutronLab } from '../helpers/neutron-lab.ts';

const notRoot = process.getuid?.() !== 0;
const lab = await neutronLab();
const N = Number(process.env.KURYR_STRESS_NEUTRON_CONTAINERS ?? 20);

describe(`real Neutron: ${N} containers at once, and concurrent creates of one Neutron network`, {
  skip: notRoot ? 'needs root' : lab.skip.noauth,
}, () => {
  const x = 100 + Math.floor(Math.random() * 150);
  const env = e2eFixture({ name: 'nq', driverPrefix: 'kq', backend: 'neutron', lab, mode: 'noauth', snapshot: false });
  const { tag, driver } = env;

  it(`${N} × docker run at once, then ${N} × docker rm -f at once`, async (t) => {
    await env.engine.dockerOk([
      'network',
      'create',
      '-d',
      driver,
      '--ipam-driver',
      driver,
      '--subnet',
      `10.${x}.0.0/24`,
      'q',
    ]);
    const names = Array.from({ length: N }, (_, i) => `q${i}`);
    const t0 = performance.now();
    const runs = await Promise.all(
      names.map((n) =>
        env.engine.docker(['run', '-d', '--name', n, '--net', 'q', 'busybox:local', 'sleep', '600'], {
          timeoutMs: 300_000,
        }),
      ),
    );
    const runMs = performance.now() - t0;
    assert.deepEqual(
      runs.filter((r) => r.code !== 0).map((r) => r.stderr.trim()),
      [],
      'every docker run succeeded',
    );
    const addresses = await Promise.all(
      names.map(async (n) =>
        (await env.engine.dockerOk(['inspect', '-f', '{{.NetworkSettings.Networks.q.IPAddress}}', n])).trim(),
      ),
    );
    assert.equal(new Set(addresses).size, N, 'distinct addresses');
    const ping = await env.engine.docker(['exec', names[0]!, 'ping', '-c', '1', '-W', '3', addresses[N - 1]!]);
    assert.equal(ping.code, 0, 'the first container reaches the last one');
    const t1 = performance.now();
    const removals = await Promise.all(names.map((n) => env.engine.docker(['rm', '-f', n], { timeoutMs: 300_000 })));
    const rmMs = performance.now() - t1;
    assert.deepEqual(
      removals.filter((r) => r.code !== 0).map((r) => r.stderr.trim()),
      [],
    );
    await env.engine.dockerOk(['network', 'rm', 'q']);
    const left = (await env.neutron.listPorts({ device_owner: 'compute:kuryr' })).filter((p) =>
      p.fixed_ips.some((f) => f.ip_address.startsWith(`10.${x}.0.`)),
    );
    assert.deepEqual(left, [], 'no port left');
    const failures = readFileSync(env.plugin.logFile, 'utf8')
      .split('\n')
      .filter((l) => l.includes('"level":50'));
    assert.deepEqual(failures, [], 'no failed plugin call');
    t.diagnostic(`run ×${N}: ${Math.round(runMs)} ms; rm -f ×${N}: ${Math.round(rmMs)} ms`);
  });

  it('two docker network create of one Neutron network at once: one network, one subnet, both usable', async () => {
    const shared = await env.neutron.createNetwork({ name: `shared-${tag}` });
    const [subnet] = await env.neutron.createSubnets([
      { network_id: shared.id, ip_version: 4, cidr: `10.${x}.9.0/24`, name: `shared-${tag}` },
    ]);
    try {
      const opts = [
        '-o',
        `neutron.net.uuid=${shared.id}`,
        '--ipam-opt',
        `neutron.subnet.uuid=${subnet!.id}`,
        '-o',
        `neutron.subnet.uuid=${subnet!.id}`,
      ];
      const [a, b] = await Promise.all(
        ['sa', 'sb'].map((n) =>
          env.engine.docker([
            'network',
            'create',
            '-d',
            driver,
            '--ipam-driver',
            driver,
            '--subnet',
            `10.${x}.9.0/24`,
            ...opts,
            n,
          ]),
        ),
      );
      assert.equal(a!.code, 0, a!.stderr);
      assert.equal(b!.code, 0, b!.stderr);
      assert.equal((await env.neutron.listNetworks({ name: `shared-${tag}` })).length, 1, 'no second Neutron network');
      assert.equal((await env.neutron.listSubnets({ network_id: shared.id })).length, 1, 'no second subnet');
      const tagged = (await env.neutron.showNetwork(shared.id)).tags.filter((t) => t.startsWith('kuryr.net.existing:'));
      assert.equal(tagged.length, 2, 'both Docker networks are recorded on it');
      await env.engine.dockerOk(['run', '-d', '--name', 'sa1', '--net', 'sa', 'busybox:local', 'sleep', '600']);
      await env.engine.dockerOk(['run', '-d', '--name', 'sb1', '--net', 'sb', 'busybox:local', 'sleep', '600']);
      const ip = (
        await env.engine.dockerOk(['inspect', '-f', '{{.NetworkSettings.Networks.sb.IPAddress}}', 'sb1'])
      ).trim();
      const ping = await env.engine.docker(['exec', 'sa1', 'ping', '-c', '1', '-W', '3', ip]);
      assert.equal(ping.code, 0, 'containers of the two Docker networks share the Neutron network');
      await env.engine.dockerOk(['rm', '-f', 'sa1', 'sb1']);
      await env.engine.dockerOk(['network', 'rm', 'sa', 'sb']);
      const after = await env.neutron.showNetwork(shared.id);
      assert.deepEqual(after.tags, [], 'only our tags came and went');
      assert.equal((await env.neutron.listSubnets({ network_id: shared.id })).length, 1, 'the operator subnet stays');
    } finally {
      await env.neutron.deleteNetwork(shared.id).catch(() => undefined);
    }
  });
});
