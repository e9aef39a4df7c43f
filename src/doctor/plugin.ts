/**
 * `plugin.socket`: the plugin is registered where Docker looks and answers `POST /Plugin.Activate` as a network
 * and IPAM driver. `plugin.name`: Docker resolves the driver name to this plugin and not to another one (a
 * managed plugin of the same name wins over every socket and spec file; among those, the first that exists in
 * Docker's search order wins).
 *
 * Docker's search order for a legacy plugin NAME (moby pkg/plugins/discovery.go): /run/docker/plugins/NAME.sock,
 * /run/docker/plugins/NAME/NAME.sock, then in /etc/docker/plugins and /usr/lib/docker/plugins: NAME.spec,
 * NAME/NAME.spec, NAME.json, NAME/NAME.json. Managed plugins' sockets are in /run/docker/plugins/<id>/.
 */
import { existsSync, lstatSync, readFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import type { Config } from '../config/config.ts';
import {
  type CheckResult,
  type DoctorPaths,
  errnoOf,
  failed,
  type ManagedPlugin,
  messageOf,
  ok,
  skip,
  warn,
} from './types.ts';

const START_HINT =
  'start the plugin: `kuryr serve`, `systemctl start kuryr-ts`, `docker start kuryr` (container) — see docs/install.md';

/** Every path Docker tries for legacy plugin `name`, in its order. */
export function dockerSearchOrder(name: string, paths: DoctorPaths): string[] {
  const both = (dir: string, ext: string) => [path.join(dir, `${name}${ext}`), path.join(dir, name, `${name}${ext}`)];
  return [
    ...both(paths.socketDir, '.sock'),
    ...paths.specDirs.flatMap((dir) => [...both(dir, '.spec'), ...both(dir, '.json')]),
  ];
}

/** True when `file` is what Docker accepts at that place: a socket for `.sock`, any file for specs. */
function registered(file: string): boolean {
  try {
    const st = lstatSync(file);
    return file.endsWith('.sock') ? st.isSocket() : st.isFile() || st.isSymbolicLink();
  } catch {
    return false;
  }
}

/** Where this configuration registers the plugin: its socket, or the spec file `--listen` writes. */
export function ownRegistration(config: Config): string {
  return config.listen === null
    ? config.socketPath!
    : path.join(config.specDir, config.driverName, `${config.driverName}.spec`);
}

/** The managed plugin named like the driver (`NAME` or `NAME:latest`), if the engine has one. */
export function managedNamesake(name: string, plugins: readonly ManagedPlugin[] | null): ManagedPlugin | undefined {
  return plugins?.find((p) => p.Name === name || p.Name === `${name}:latest`);
}

/** A managed plugin that is kuryr-ts (built by packaging/managed-plugin/build.sh). */
export function isKuryrPlugin(p: ManagedPlugin): boolean {
  return (p.Config?.Entrypoint ?? []).some((e) => /kuryr/.test(e)) && p.Config?.Interface?.Socket === 'kuryr.sock';
}

/** `plugin.name`. */
export function checkPluginName(config: Config, paths: DoctorPaths, plugins: ManagedPlugin[] | null): CheckResult {
  const name = config.driverName;
  const own = ownRegistration(config);
  const managed = managedNamesake(name, plugins);
  const ownExists = registered(own);
  if (managed !== undefined && isKuryrPlugin(managed) && !ownExists) {
    return ok(
      'plugin.name',
      `${managed.Name} is the managed kuryr-ts plugin (${managed.Enabled ? 'enabled' : 'disabled'}); networks use -d ${managed.Name} --ipam-driver ${managed.Name}`,
    );
  }
  if (managed !== undefined) {
    return failed(
      'plugin.name',
      `managed plugin ${managed.Name} (${managed.Id.slice(0, 12)}, ${managed.Enabled ? 'enabled' : 'disabled'}) takes the name ${name}: Docker never reaches ${own}`,
      `docker plugin disable ${managed.Name} && docker plugin rm ${managed.Name}, or give this plugin another name (--driver-name / [kuryr_ts] driver_name)`,
    );
  }
  const order = dockerSearchOrder(name, paths);
  const present = order.filter(registered);
  const managedNote = plugins === null ? ' (managed plugins not checked: Docker did not answer)' : '';
  if (!order.includes(own)) {
    return failed(
      'plugin.name',
      `Docker does not look for ${name} at ${own}; it looks at ${order.slice(0, 2).join(' and ')} and spec files`,
      `serve on ${order[0]} (the default --socket for --driver-name ${name})`,
    );
  }
  const winner = present[0];
  if (winner !== undefined && winner !== own) {
    return failed(
      'plugin.name',
      `Docker resolves ${name} to ${winner}, which comes before this plugin's ${own}`,
      `remove ${winner} if it is stale, or give this plugin another name (--driver-name)`,
    );
  }
  const others = present.filter((p) => p !== own);
  if (others.length > 0) {
    return warn(
      'plugin.name',
      `${others.join(', ')} also register${others.length === 1 ? 's' : ''} ${name}; Docker uses them when ${own} is gone${managedNote}`,
      `remove ${others.join(' and ')} unless another plugin needs ${others.length === 1 ? 'it' : 'them'}`,
    );
  }
  return ok('plugin.name', `no other plugin is registered as ${name}${managedNote}`);
}

/** Where the managed plugin's socket is on the host. */
export function managedSocket(plugin: ManagedPlugin, paths: DoctorPaths): string {
  return path.join(paths.socketDir, plugin.Id, plugin.Config?.Interface?.Socket ?? 'kuryr.sock');
}

/** `plugin.socket`. */
export async function checkPluginSocket(
  config: Config,
  paths: DoctorPaths,
  plugins: ManagedPlugin[] | null,
): Promise<CheckResult> {
  const own = ownRegistration(config);
  const managed = managedNamesake(config.driverName, plugins);
  if (managed !== undefined && isKuryrPlugin(managed) && !registered(own)) {
    if (!managed.Enabled) {
      return failed(
        'plugin.socket',
        `managed plugin ${managed.Name} is disabled`,
        `docker plugin enable ${managed.Name}`,
      );
    }
    const socket = managedSocket(managed, paths);
    if (!existsSync(socket)) {
      return ok(
        'plugin.socket',
        `managed plugin ${managed.Name} is enabled (Docker activated it; ${socket} not visible here)`,
      );
    }
    return activateVerdict(
      socket,
      { socketPath: socket },
      `docker plugin disable ${managed.Name} && docker plugin enable ${managed.Name}`,
    );
  }
  if (config.listen === null) {
    let st: ReturnType<typeof lstatSync> | undefined;
    try {
      st = lstatSync(own);
    } catch {
      return failed('plugin.socket', `no plugin socket at ${own}`, START_HINT);
    }
    if (!st.isSocket()) return failed('plugin.socket', `${own} is not a socket`, `remove it, then ${START_HINT}`);
    return activateVerdict(own, { socketPath: own }, START_HINT);
  }
  let spec: string;
  try {
    spec = readFileSync(own, 'utf8').trim();
  } catch {
    return failed('plugin.socket', `no spec file at ${own} (written by kuryr serve --listen)`, START_HINT);
  }
  let url: URL;
  try {
    url = new URL(spec.replace(/^tcp:/, 'http:'));
  } catch {
    return failed('plugin.socket', `${own} holds ${JSON.stringify(spec)}, not a URL`, `remove it, then ${START_HINT}`);
  }
  if (url.protocol !== 'http:') {
    return skip('plugin.socket', `${own} points at ${spec}; only http:// and tcp:// are checked`);
  }
  return activateVerdict(`${spec} (${own})`, { host: url.hostname, port: Number(url.port || 80) }, START_HINT);
}

type Target = { socketPath: string } | { host: string; port: number };

async function activateVerdict(where: string, target: Target, hint: string): Promise<CheckResult> {
  try {
    const answer = await activate(target);
    if (answer.status !== 200) {
      return failed('plugin.socket', `${where} answers Plugin.Activate with HTTP ${answer.status}`, hint);
    }
    const wanted = ['NetworkDriver', 'IpamDriver'];
    const missing = wanted.filter((w) => !answer.implements.includes(w));
    if (missing.length > 0) {
      return failed(
        'plugin.socket',
        `${where} implements ${answer.implements.join(', ') || 'nothing'}, not ${missing.join(' and ')}: another plugin?`,
        'give this plugin a name of its own (--driver-name)',
      );
    }
    return ok('plugin.socket', `${where} answers Plugin.Activate (${answer.implements.join(', ')})`);
  } catch (err) {
    const code = errnoOf(err);
    if (code === 'ECONNREFUSED' && 'socketPath' in target) {
      return failed(
        'plugin.socket',
        `${where} exists but no process listens on it (left by a crash?)`,
        `${hint}; it replaces a stale socket`,
      );
    }
    return failed('plugin.socket', `${where}: ${messageOf(err)}`, hint);
  }
}

/** `POST /Plugin.Activate` as dockerd sends it; resolves to the status and the `Implements` list. */
export function activate(target: Target, timeoutMs = 5_000): Promise<{ status: number; implements: string[] }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        ...target,
        method: 'POST',
        path: '/Plugin.Activate',
        headers: { Accept: 'application/vnd.docker.plugins.v1.2+json', 'Content-Length': 0 },
        agent: false,
        timeout: timeoutMs,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          let impl: string[] = [];
          try {
            const doc = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { Implements?: unknown };
            if (Array.isArray(doc.Implements)) impl = doc.Implements.filter((x): x is string => typeof x === 'string');
          } catch {
            // not JSON: no Implements
          }
          resolve({ status: res.statusCode ?? 0, implements: impl });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}
