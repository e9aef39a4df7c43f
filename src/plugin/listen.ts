/**
 * Where the plugin listens: a unix socket Docker discovers by name (`/run/docker/plugins/<name>.sock`, root-only
 * 0660), or TCP with a spec file Docker discovers instead (`<specDir>/<name>/<name>.spec`, as the original).
 */
import { readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import type http from 'node:http';
import type https from 'node:https';
import net from 'node:net';
import path from 'node:path';
import { fail } from '../errors.ts';

/** Resolves a group name (or numeric ID) to its GID via /etc/group. */
export function groupId(group: string): number {
  if (/^\d+$/.test(group)) return Number(group);
  const line = readFileSync('/etc/group', 'utf8')
    .split('\n')
    .find((l) => l.split(':')[0] === group);
  const gid = line?.split(':')[2];
  if (gid === undefined) throw fail.config(`socket group ${JSON.stringify(group)} does not exist`);
  return Number(gid);
}

/** True when something accepts connections on the unix socket. */
export function socketAnswers(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const conn = net.connect(socketPath);
    conn.once('connect', () => {
      conn.destroy();
      resolve(true);
    });
    conn.once('error', () => resolve(false));
  });
}

/** Listens on a unix socket, mode 0660, owned by root and `group` (root when null). */
export async function listenUnix(
  server: http.Server | https.Server,
  socketPath: string,
  group: string | null,
): Promise<void> {
  await fs.mkdir(path.dirname(socketPath), { recursive: true, mode: 0o755 });
  const existing = await fs.lstat(socketPath).catch(() => undefined);
  if (existing !== undefined) {
    if (!existing.isSocket()) throw fail.config(`${socketPath} exists and is not a socket`);
    if (await socketAnswers(socketPath)) throw fail.config(`another process already serves ${socketPath}`);
    await fs.unlink(socketPath); // left behind by a crashed instance
  }
  const gid = group === null ? 0 : groupId(group);
  // Created under a restrictive umask so there is no moment with wider permissions.
  const previous = process.umask(0o117);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(socketPath, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } finally {
    process.umask(previous);
  }
  await fs.chown(socketPath, 0, gid);
  await fs.chmod(socketPath, 0o660);
}

/** Docker's TLS settings for a JSON plugin spec file (Docker plugin API docs). */
export interface SpecTls {
  caFile: string | null;
  certFile: string;
  keyFile: string;
}

/**
 * Listens on TCP and writes the file Docker uses to find the plugin: `<name>.spec` (a URL) for HTTP, or
 * `<name>.json` with `TLSConfig` for HTTPS (as the original's TLS set-up). Returns the file's path.
 */
export async function listenTcp(
  server: http.Server | https.Server,
  host: string,
  port: number,
  specDir: string,
  driverName: string,
  tls: SpecTls | null = null,
): Promise<string> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  const actualPort = typeof address === 'object' && address !== null ? address.port : port;
  const hostPart = host.includes(':') ? `[${host}]` : host;
  const dir = path.join(specDir, driverName);
  await fs.mkdir(dir, { recursive: true });
  const specFile = path.join(dir, `${driverName}.spec`);
  const jsonFile = path.join(dir, `${driverName}.json`);
  if (tls === null) {
    await fs.rm(jsonFile, { force: true });
    await fs.writeFile(specFile, `http://${hostPart}:${actualPort}\n`, { mode: 0o644 });
    return specFile;
  }
  // Docker reads NAME.spec before NAME.json: a stale plain-HTTP spec would win.
  await fs.rm(specFile, { force: true });
  const spec = {
    Name: driverName,
    Addr: `https://${hostPart}:${actualPort}`,
    TLSConfig: { InsecureSkipVerify: false, CAFile: tls.caFile ?? '', CertFile: tls.certFile, KeyFile: tls.keyFile },
  };
  await fs.writeFile(jsonFile, `${JSON.stringify(spec, null, 2)}\n`, { mode: 0o644 });
  return jsonFile;
}
