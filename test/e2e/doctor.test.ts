// kuryr doctor against a real set-up: a private dockerd and the real plugin process. Healthy, it passes (exit 0,
// no failed check, the Docker, plugin and backend checks ok); with a network and containers in use, nothing is
// a leftover; with the plugin stopped, or killed so that its socket is stale, plugin.socket fails with a hint.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { e2eFixture } from '../helpers/e2e.ts';
import { KURYR_BIN } from '../helpers/plugin-process.ts';

const notRoot = process.getuid?.() !== 0;

interface Report {
  ok: boolean;
  counts: Record<string, number>;
  checks: { id: string; status: string; summary: string; hint: string | null }[];
}

describe('kuryr doctor on a private dockerd with the plugin', {
  skip: notRoot ? 'needs root (run bash scripts/test.sh as root)' : false,
}, () => {
  const env = e2eFixture({
    name: 'doctor',
    driverPrefix: 'kxdoc',
    conf: '[embedded]\ndefault_pool_prefix_v4 = 10.220.0.0/16\ndefault_pool_prefix_v6 = fd00:220::/48\n',
    removeAll: true,
  });
  const { driver } = env;

  const doctor = (extra: string[] = []) => {
    const r = spawnSync(
      KURYR_BIN,
      [
        'doctor',
        '--json',
        '--driver-name',
        driver,
        '--state-dir',
        env.stateDir,
        '--config',
        env.confFile,
        '--docker-host',
        env.engine.host,
        ...extra,
      ],
      { encoding: 'utf8' },
    );
    assert.ok(r.stdout.startsWith('{'), `doctor printed no JSON: ${r.stdout}${r.stderr}`);
    return { code: r.status, report: JSON.parse(r.stdout) as Report };
  };
  const statusOf = (report: Report) => Object.fromEntries(report.checks.map((c) => [c.id, c.status]));
  const failures = (report: Report) =>
    report.checks
      .filter((c) => c.status === 'fail')
      .map((c) => `${c.id}: ${c.summary}`)
      .join('\n');

  it('a healthy set-up passes: exit 0, Docker, plugin and backend checks ok', () => {
    const { code, report } = doctor();
    assert.equal(failures(report), '');
    assert.equal(code, 0);
    assert.equal(report.ok, true);
    const s = statusOf(report);
    for (const id of [
      'config',
      'docker.engine',
      'plugin.socket',
      'plugin.name',
      'state-dir',
      'backend.store',
      'backend.pools',
      'tools.ip',
      'tools.nft',
      'kernel.bridge',
      'kernel.veth',
      'leftovers',
    ])
      assert.equal(s[id], 'ok', `${id}: ${report.checks.find((c) => c.id === id)?.summary}`);
    assert.match(report.checks.find((c) => c.id === 'docker.engine')!.summary, /Docker Engine 20\.10/);
    assert.match(report.checks.find((c) => c.id === 'plugin.socket')!.summary, /NetworkDriver, IpamDriver/);
    assert.equal(s['neutron.reachable'], 'skip');
  });

  it('with a network and two containers in use, nothing is a leftover', async () => {
    await env.engine.dockerOk(['network', 'create', '-d', driver, '--ipam-driver', driver, 'dnet']);
    for (const c of ['d1', 'd2'])
      await env.engine.dockerOk(['run', '-d', '--name', c, '--net', 'dnet', 'busybox:local', 'sleep', '3600']);
    const { code, report } = doctor();
    assert.equal(code, 0, failures(report));
    const leftovers = report.checks.find((c) => c.id === 'leftovers')!;
    assert.equal(leftovers.status, 'ok', leftovers.summary);
    assert.match(leftovers.summary, /nothing for kuryr gc to remove/);
  });

  it('with the plugin stopped, plugin.socket fails with a hint and doctor exits 1', async () => {
    await env.plugin.stop();
    const { code, report } = doctor();
    assert.equal(code, 1);
    assert.equal(report.ok, false);
    const check = report.checks.find((c) => c.id === 'plugin.socket')!;
    assert.equal(check.status, 'fail');
    assert.match(check.summary, new RegExp(`no plugin socket at /run/docker/plugins/${driver}\\.sock`));
    assert.match(check.hint ?? '', /kuryr serve/);
    assert.deepEqual(
      report.checks.filter((c) => c.status === 'fail').map((c) => c.id),
      ['plugin.socket'],
    );
  });

  it('after kill -9 (a stale socket), plugin.socket says nobody listens; after a restart it passes again', async () => {
    await env.plugin.restart();
    await env.plugin.kill9();
    const stale = doctor();
    assert.equal(stale.code, 1);
    const check = stale.report.checks.find((c) => c.id === 'plugin.socket')!;
    assert.match(check.summary, /exists but no process listens on it/);
    await env.plugin.restart();
    const healthy = doctor();
    assert.equal(healthy.code, 0, failures(healthy.report));
  });
});
