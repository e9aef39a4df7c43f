// The composition root (src/app.ts) builds serve's and gc's process alike: gc unbinds a port with the
// configured `[DEFAULT] bindir` and the configured logger, as serve's driver does (it once used the default
// directory, /usr/libexec/kuryr, and no logger).
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { boundToRequest, openGcRuntime } from '../../src/app.ts';
import { loadConfig } from '../../src/config/load.ts';
import type { Logger } from '../../src/observability/logger.ts';
import type { NeutronApi } from '../../src/neutron/api.ts';
import { openEmbeddedNeutron } from '../../src/neutron/embedded/store.ts';
import type { Port } from '../../src/neutron/types.ts';
import { createRequestContext, runInRequestContext } from '../../src/observability/request-context.ts';
import type { Deadline } from '../../src/util/deadline.ts';

/** A logger that keeps every line. */
function recordingLogger(): Logger & { lines: { level: string; obj: object; msg?: string }[] } {
  const lines: { level: string; obj: object; msg?: string }[] = [];
  const at =
    (level: string) =>
    (obj: object, msg?: string): void => {
      lines.push({ level, obj, ...(msg === undefined ? {} : { msg }) });
    };
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

const VIF_TYPE = 'kuryr-app-test';

function port(): Port {
  return {
    id: '6b0c3c3e-6f1e-4a51-9d35-1a2b3c4d5e6f',
    name: '',
    description: '',
    network_id: '0f4e4a5e-2b1c-4d3e-8f9a-0b1c2d3e4f5a',
    admin_state_up: true,
    mac_address: 'fa:16:3e:00:00:01',
    fixed_ips: [],
    device_id: 'a'.repeat(64),
    device_owner: 'compute:kuryr',
    status: 'ACTIVE',
    security_groups: [],
    allowed_address_pairs: [],
    port_security_enabled: true,
    tags: [],
    project_id: '',
    tenant_id: '',
    'binding:host_id': '',
    'binding:vif_type': VIF_TYPE,
    'binding:vif_details': {},
    'binding:vnic_type': 'normal',
    'binding:profile': {},
    created_at: '',
    updated_at: '',
    revision_number: 1,
  };
}

describe('the composition root', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'kx-app-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  test("gc's process unbinds with the configured bind-script directory and logger, as serve's", async () => {
    const bindir = path.join(dir, 'bin');
    mkdirSync(bindir);
    const ran = path.join(dir, 'ran');
    const script = path.join(bindir, VIF_TYPE);
    writeFileSync(script, `#!/bin/sh\necho "$@" > '${ran}'\necho unbound-by-test\n`);
    chmodSync(script, 0o755);
    const file = path.join(dir, 'kuryr.conf');
    writeFileSync(file, `[DEFAULT]\nbindir = ${bindir}\n[kuryr_ts]\nstate_dir = ${path.join(dir, 'state')}\n`);
    const config = loadConfig({ config: file, backend: 'embedded' }, {});
    const log = recordingLogger();
    const { rt, close } = await openGcRuntime(config, log);
    try {
      // The script runs first; deleting the (absent) host end of the veth afterwards is not what is tested.
      await rt.binder.unbind(port()).catch(() => undefined);
    } finally {
      await close();
    }
    assert.match(readFileSync(ran, 'utf8'), new RegExp(`^unbind ${port().id} `), 'the configured script ran');
    assert.ok(
      log.lines.some((l) => JSON.stringify(l).includes('unbound-by-test')),
      `the script's output went to the configured logger: ${JSON.stringify(log.lines)}`,
    );
  });
});

test("the port drivers' client: each call bound to the deadline of the request it serves", async () => {
  const store = openEmbeddedNeutron({ path: ':memory:' });
  const calls: { method: string; deadline: Deadline | undefined }[] = [];
  const recording = (deadline: Deadline | undefined): NeutronApi =>
    new Proxy(store, {
      get(target, key) {
        if (key === 'withDeadline') return (d: Deadline) => recording(d);
        const value = Reflect.get(target, key, target) as unknown;
        if (typeof value !== 'function') return value;
        return (...args: unknown[]) => {
          calls.push({ method: String(key), deadline });
          return (value as (...a: unknown[]) => unknown).apply(target, args);
        };
      },
    });
  const api = boundToRequest(recording(undefined));
  const deadline: Deadline = { at: Date.now() + 60_000, signal: new AbortController().signal };
  try {
    await api.listPorts();
    await runInRequestContext({ ...createRequestContext('NetworkDriver.Join'), deadline }, () => api.listNetworks());
    await runInRequestContext(createRequestContext('NetworkDriver.Join'), () => api.listSubnets());
    assert.deepEqual(calls, [
      { method: 'listPorts', deadline: undefined },
      { method: 'listNetworks', deadline },
      { method: 'listSubnets', deadline: undefined },
    ]);
  } finally {
    store.close();
  }
});
