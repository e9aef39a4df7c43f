// Concurrency: N `docker run` at once, then N `docker rm -f` at once, on one network, R rounds, with a real
// private dockerd and the real plugin (embedded backend). No failed call, distinct addresses, nothing leaked.
// CI runs N=50, R=1; KURYR_STRESS_ROUNDS / KURYR_STRESS_CONTAINERS scale it (npm run stress).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ensureBusyboxImage, type PrivateDockerd, startPrivateDockerd } from '../helpers/docker-engine.ts';
import { KURYR_BIN, type PluginProcess, startPlugin } from '../helpers/plugin-process.ts';

const notRoot = process.getuid?.() !== 0;
const ROUNDS = Number(process.env.KURYR_STRESS_ROUNDS ?? 1);
const CONTAINERS = Number(process.env.KURYR_STRESS_CONTAINERS ?? 50);

describe(`${CONTAINERS} containers started and removed at once, ${ROUNDS} round(s)`, {
  skip: notRoot ? 'needs root (run bash scripts/test.sh as root)' : false,
}, () => {
  const tag = Math.random().toString(36).slice(2, 8);
  const driver = `kp${tag}`;
  const x = 100 + Math.floor(Math.random() * 150);
  let dir: string;
  let engine: PrivateDockerd;
  let plugin: PluginProcess;

  const status = () =>
    JSON.parse(
      execFileSync(KURYR_BIN, ['status', '--json', '--state-dir', path.join(dir, 'state'), '--driver-name', driver], {
        encoding: 'utf8',
      }),
    ) as { ports: { fixed_ips: { ip_address: string }[] }[]; networks: unknown[] };

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'kx-par-'));
    engine = await startPrivateDockerd({ name: `par-${tag}` });
    await ensureBusyboxImage(engine);
    plugin = await startPlugin({ driverName: driver, stateDir: path.join(dir, 'state') });
    await engine.dockerOk([
      'network',
      'create',
      '-d',
      driver,
      '--ipam-driver',
      driver,
      '--subnet',
      `10.${x}.0.0/23`,
      'par',
    ]);
  });

  after(async () => {
    await engine?.stop({ killContainers: true });
    await plugin?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  for (let round = 1; round <= ROUNDS; round++) {
    it(`round ${round}: ${CONTAINERS} × docker run, then ${CONTAINERS} × docker rm -f, all at once`, async (t) => {
      const names = Array.from({ length: CONTAINERS }, (_, i) => `p${round}-${i}`);
      const t0 = performance.now();
      const runs = await Promise.all(
        names.map((n) =>
          engine.docker(['run', '-d', '--name', n, '--net', 'par', 'busybox:local', 'sleep', '600'], {
            timeoutMs: 300_000,
          }),
        ),
      );
      const runMs = performance.now() - t0;
      const failed = runs.filter((r) => r.code !== 0).map((r) => r.stderr.trim());
      assert.deepEqual(failed, [], 'every docker run succeeded');

      const addresses = await Promise.all(
        names.map(async (n) =>
          (await engine.dockerOk(['inspect', '-f', '{{.NetworkSettings.Networks.par.IPAddress}}', n])).trim(),
        ),
      );
      assert.equal(new Set(addresses).size, CONTAINERS, 'distinct addresses');
      const ports = status().ports;
      assert.equal(ports.length, CONTAINERS, 'one Neutron port per container');
      const ping = await engine.docker(['exec', names[0]!, 'ping', '-c', '1', '-W', '2', addresses[CONTAINERS - 1]!]);
      assert.equal(ping.code, 0, 'the first container reaches the last one');

      const t1 = performance.now();
      const removals = await Promise.all(names.map((n) => engine.docker(['rm', '-f', n], { timeoutMs: 300_000 })));
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
      ).filter((l) => l.ifalias === `kuryr-ts:${driver}` && l.ifname.startsWith('tap'));
      assert.deepEqual(leftDevices, [], 'no veth left');
      const errors = readFileSync(plugin.logFile, 'utf8')
        .split('\n')
        .filter((l) => l.includes('"level":50'));
      assert.deepEqual(errors, [], 'no failed plugin call');
      t.diagnostic(`run ×${CONTAINERS}: ${Math.round(runMs)} ms; rm -f ×${CONTAINERS}: ${Math.round(rmMs)} ms`);
    });
  }

  it('the network is removed and nothing of it is left', async () => {
    await engine.dockerOk(['network', 'rm', 'par']);
    const st = status();
    assert.deepEqual(st.networks, []);
    assert.deepEqual(st.ports, []);
  });
});
