// Concurrency: N `docker run` at once, then N `docker rm -f` at once, on one network, R rounds, with a real
// private dockerd and the real plugin (embedded backend). No failed call, distinct addresses, nothing leaked.
// CI runs N=50, R=1; KURYR_STRESS_ROUNDS / KURYR_STRESS_CONTAINERS scale it (npm run stress).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { e2eFixture } from '../helpers/e2e.ts';
import { KURYR_BIN } from '../helpers/plugin-process.ts';

const notRoot = process.getuid?.() !== 0;
const ROUNDS = Number(process.env.KURYR_STRESS_ROUNDS ?? 1);
const CONTAINERS = Number(process.env.KURYR_STRESS_CONTAINERS ?? 50);

describe(`${CONTAINERS} containers started and removed at once, ${ROUNDS} round(s)`, {
  skip: notRoot ? 'needs root (run bash scripts/test.sh as root)' : false,
}, () => {
  const x = 100 + Math.floor(Math.random() * 150);
  const env = e2eFixture({
    name: 'par',
    driverPrefix: 'kp',
    started: (env) => env.netCreate('par', ['--subnet', `10.${x}.0.0/23`]).then(() => undefined),
  });

  const status = () =>
    JSON.parse(
      execFileSync(KURYR_BIN, ['status', '--json', '--state-dir', env.stateDir, '--driver-name', env.driver], {
        encoding: 'utf8',
      }),
    ) as { ports: { fixed_ips: { ip_address: string }[] }[]; networks: unknown[] };

  for (let round = 1; round <= ROUNDS; round++) {
    it(`round ${round}: ${CONTAINERS} × docker run, then ${CONTAINERS} × docker rm -f, all at once`, async (t) => {
      const names = Array.from({ length: CONTAINERS }, (_, i) => `p${round}-${i}`);
      const t0 = performance.now();
      const runs = await Promise.all(
        names.map((n) =>
          env.engine.docker(['run', '-d', '--name', n, '--net', 'par', 'busybox:local', 'sleep', '600'], {
            timeoutMs: 300_000,
          }),
        ),
      );
      const runMs = performance.now() - t0;
      const failed = runs.filter((r) => r.code !== 0).map((r) => r.stderr.trim());
      assert.deepEqual(failed, [], 'every docker run succeeded');

      const addresses = await Promise.all(
        names.map(async (n) =>
          (await env.engine.dockerOk(['inspect', '-f', '{{.NetworkSettings.Networks.par.IPAddress}}', n])).trim(),
        ),
      );
      assert.equal(new Set(addresses).size, CONTAINERS, 'distinct addresses');
      const ports = status().ports;
      assert.equal(ports.length, CONTAINERS, 'one Neutron port per container');
      const ping = await env.engine.docker([
        'exec',
        names[0]!,
        'ping',
        '-c',
        '1',
        '-W',
        '2',
        addresses[CONTAINERS - 1]!,
      ]);
      assert.equal(ping.code, 0, 'the first container reaches the last one');

      const t1 = performance.now();
      const removals = await Promise.all(names.map((n) => env.engine.docker(['rm', '-f', n], { timeoutMs: 300_000 })));
      const rmMs = performance.now() - t1;
      assert.deepEqual(
        removals.filter((r) => r.code !== 0).map((r) => r.stderr.trim()),
        [],
        'every docker rm -f succeeded',
      );
      assert.equal(status().ports.length, 0, 'no port left');
      const leftDevices = (
        JSON.parse(execFileSync('ip', ['-json', 'link', 'show'], { encoding: 'utf8' })) as {
          ifname: string;
          ifalias?: string;
        }[]
      ).filter((l) => l.ifalias === `kuryr-ts:${env.driver}` && l.ifname.startsWith('tap'));
      assert.deepEqual(leftDevices, [], 'no veth left');
      const errors = readFileSync(env.plugin.logFile, 'utf8')
        .split('\n')
        .filter((l) => l.includes('"level":50'));
      assert.deepEqual(errors, [], 'no failed plugin call');
      t.diagnostic(`run ×${CONTAINERS}: ${Math.round(runMs)} ms; rm -f ×${CONTAINERS}: ${Math.round(rmMs)} ms`);
    });
  }

  it('the network is removed and nothing of it is left', async () => {
    await env.engine.dockerOk(['network', 'rm', 'par']);
    const st = status();
    assert.deepEqual(st.networks, []);
    assert.deepEqual(st.ports, []);
  });
});
