/**
 * `kuryr doctor`'s host.* checks: the facts that decide the embedded backend's data path (forwarding, the iptables
 * FORWARD policy and DOCKER-USER, br_netfilter, route_localnet), read from a fake /proc/sys and a fake iptables.
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import type { Config } from '../../src/config/config.ts';
import { checkForwarding } from '../../src/doctor/host.ts';

const dir = mkdtempSync(path.join(os.tmpdir(), 'kx-doctor-fwd-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function procSys(values: Record<string, string>): string {
  const root = mkdtempSync(path.join(dir, 'sys-'));
  for (const [key, value] of Object.entries(values)) {
    mkdirSync(path.dirname(path.join(root, key)), { recursive: true });
    writeFileSync(path.join(root, key), `${value}\n`);
  }
  return root;
}

/** A fake iptables printing `forward` for `-S FORWARD` and succeeding for `-S DOCKER-USER` when `userChain`. */
function fakeIptables(forward: string, userChain: boolean): string {
  const file = path.join(dir, `iptables-${Math.random().toString(36).slice(2)}`);
  writeFileSync(
    file,
    `#!/bin/sh\ncase "$*" in\n*FORWARD*) printf '%s\\n' '${forward}' ;;\n*DOCKER-USER*) exit ${userChain ? 0 : 1} ;;\nesac\n`,
  );
  chmodSync(file, 0o755);
  return file;
}

const embedded = { backend: 'embedded' } as Config;
const byId = (results: { id: string; status: string; summary: string }[]) =>
  Object.fromEntries(results.map((r) => [r.id, r]));

describe('doctor host.* checks', () => {
  test("Docker's default firewall: forwarding on, FORWARD DROP with DOCKER-USER, br_netfilter on", async () => {
    const sys = procSys({
      'net/ipv4/ip_forward': '1',
      'net/ipv6/conf/all/forwarding': '1',
      'net/bridge/bridge-nf-call-iptables': '1',
      'net/ipv4/conf/all/route_localnet': '0',
    });
    const r = byId(await checkForwarding(embedded, sys, fakeIptables('-P FORWARD DROP', true)));
    assert.equal(r['host.ip_forward']?.status, 'ok');
    assert.match(r['host.forward_policy']?.summary ?? '', /FORWARD policy DROP, DOCKER-USER present.*DOCKER-USER/);
    assert.match(r['host.br_netfilter']?.summary ?? '', /bridge-nf-call-iptables = 1/);
    assert.match(r['host.route_localnet']?.summary ?? '', /route_localnet = 0/);
  });

  test('forwarding off is a warning; ACCEPT without DOCKER-USER needs no rule; no br_netfilter, no iptables', async () => {
    const sys = procSys({ 'net/ipv4/ip_forward': '0', 'net/ipv4/conf/all/route_localnet': '1' });
    let r = byId(await checkForwarding(embedded, sys, fakeIptables('-P FORWARD ACCEPT', false)));
    assert.equal(r['host.ip_forward']?.status, 'warn');
    assert.match(r['host.ip_forward']?.summary ?? '', /cannot reach the outside/);
    assert.match(r['host.forward_policy']?.summary ?? '', /ACCEPT, no DOCKER-USER: the plugin adds no iptables rule/);
    assert.match(r['host.br_netfilter']?.summary ?? '', /not loaded/);
    r = byId(await checkForwarding(embedded, sys, path.join(dir, 'no-such-iptables')));
    assert.equal(r['host.forward_policy']?.status, 'skip');
  });

  test('the neutron backend skips them all', async () => {
    const results = await checkForwarding({ backend: 'neutron' } as Config, procSys({}));
    assert.deepEqual(
      results.map((r) => r.status),
      ['skip', 'skip', 'skip', 'skip'],
    );
  });
});
