// The end-to-end harness itself: a private dockerd starts, busybox:local builds in it, a container
// runs, two engines are isolated from each other, and stop() leaves no process and no directory.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, describe, it } from 'node:test';
import {
  containerInits,
  ensureBusyboxImage,
  mountsUnder,
  processAlive,
  processesMentioning,
  startPrivateDockerd,
} from '../helpers/docker-engine.ts';
import type { PrivateDockerd } from '../helpers/docker-engine.ts';

const notRoot = process.getuid?.() !== 0;

describe('private docker engine harness', {
  skip: notRoot ? 'needs root (run bash scripts/test.sh as root)' : false,
}, () => {
  const engines: PrivateDockerd[] = [];
  after(async () => {
    for (const e of engines) await e.stop();
  });

  let engine: PrivateDockerd;

  it('starts a private dockerd on its own socket', async (t) => {
    const t0 = performance.now();
    engine = await startPrivateDockerd({ name: 'harness' });
    engines.push(engine);
    t.diagnostic(`dockerd ready in ${Math.round(performance.now() - t0)} ms (${engine.root})`);
    assert.ok(existsSync(engine.socket));
    assert.ok(processAlive(engine.pid));
    const version = (await engine.dockerOk(['version', '--format', '{{.Server.Version}}'])).trim();
    assert.match(version, /^\d+\.\d+/);
    const info = (await engine.dockerOk(['info', '--format', '{{.DockerRootDir}} {{.Containers}}'])).trim();
    assert.equal(info, `${engine.dataRoot} 0`);
    // --bridge=none: no default bridge network
    const nets = (await engine.dockerOk(['network', 'ls', '--format', '{{.Name}}'])).trim().split('\n');
    assert.deepEqual(nets.sort(), ['host', 'none']);
  });

  it('builds busybox:local without a registry, once', async (t) => {
    const t0 = performance.now();
    const id = await ensureBusyboxImage(engine);
    t.diagnostic(`busybox:local built in ${Math.round(performance.now() - t0)} ms`);
    assert.match(id, /^sha256:[0-9a-f]{64}$/);
    const t1 = performance.now();
    assert.equal(await ensureBusyboxImage(engine), id);
    t.diagnostic(`second ensureBusyboxImage: ${Math.round(performance.now() - t1)} ms`);
  });

  it('runs a container with --net none', async (t) => {
    const t0 = performance.now();
    const r = await engine.docker(['run', '--rm', '--net', 'none', 'busybox:local', 'true']);
    t.diagnostic(`docker run --rm true: ${Math.round(performance.now() - t0)} ms`);
    assert.equal(r.code, 0, r.stderr);
    const out = await engine.dockerOk([
      'run',
      '--rm',
      '--net',
      'none',
      'busybox:local',
      'sh',
      '-c',
      'ip -o link show | cut -d: -f2 | tr -d " "; ping -c1 -W2 127.0.0.1 >/dev/null && echo ping-ok',
    ]);
    assert.deepEqual(out.trim().split('\n'), ['lo', 'ping-ok']);
    const fail = await engine.docker(['run', '--rm', '--net', 'none', 'busybox:local', 'false']);
    assert.equal(fail.code, 1);
    await assert.rejects(engine.dockerOk(['image', 'inspect', 'no-such-image:x']), /no-such-image/);
  });

  it('keeps two engines apart', async () => {
    const other = await startPrivateDockerd({ name: 'harness-2' });
    engines.push(other);
    assert.notEqual(other.socket, engine.socket);
    assert.equal((await other.dockerOk(['images', '-q'])).trim(), '');
    assert.notEqual((await engine.dockerOk(['images', '-q'])).trim(), '');
    await other.stop();
    assert.ok(!existsSync(other.root));
    assert.ok(existsSync(engine.socket), 'stopping one engine left the other alone');
    await engine.dockerOk(['version']);
  });

  it('stop() leaves no process and no directory behind', async (t) => {
    // a running container too: dockerd has to stop it on the way out
    await engine.dockerOk([
      'run',
      '-d',
      '--net',
      'none',
      '--stop-timeout',
      '1',
      '--name',
      'sleeper',
      'busybox:local',
      'sleep',
      '3600',
    ]);
    const { pid, root } = engine;
    assert.ok(processesMentioning(root).length >= 2, 'dockerd and its containerd run');
    const t0 = performance.now();
    await engine.stop();
    t.diagnostic(`stop() with one running container: ${Math.round(performance.now() - t0)} ms`);
    assert.ok(!processAlive(pid), 'dockerd is gone');
    assert.deepEqual(processesMentioning(root), []);
    assert.deepEqual(mountsUnder(root), []);
    assert.ok(!existsSync(root), `${root} removed`);
    await engine.stop(); // idempotent
  });

  it('stop() also cleans up after a dockerd that does not stop (SIGKILL path)', async (t) => {
    const hung = await startPrivateDockerd({ name: 'harness-hung' });
    engines.push(hung);
    await ensureBusyboxImage(hung);
    await hung.dockerOk(['run', '-d', '--net', 'none', '--name', 'sleeper', 'busybox:local', 'sleep', '3600']);
    const containerPid = Number((await hung.dockerOk(['inspect', '-f', '{{.State.Pid}}', 'sleeper'])).trim());
    assert.deepEqual(containerInits(hung.execRoot), [containerPid]);
    process.kill(hung.pid, 'SIGSTOP'); // SIGTERM now does nothing
    const t0 = performance.now();
    await hung.stop({ timeoutMs: 1_000 });
    t.diagnostic(`stop() of a stopped dockerd: ${Math.round(performance.now() - t0)} ms`);
    assert.ok(!processAlive(hung.pid));
    assert.ok(!processAlive(containerPid), 'the container was killed too');
    assert.deepEqual(processesMentioning(hung.root), []);
    assert.deepEqual(mountsUnder(hung.root), []);
    assert.ok(!existsSync(hung.root));
  });
});
