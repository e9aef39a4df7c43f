// kuryr doctor --backend neutron against a fake Keystone v3 + Neutron on 127.0.0.1: with good credentials the
// Neutron checks and the default pools pass; with a wrong password neutron.auth fails with a hint about the
// credentials and doctor exits 1; with Keystone down, neutron.reachable fails.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

const MAIN = path.resolve(import.meta.dirname, '..', '..', 'src', 'cli', 'main.ts');
const PASSWORD = 'right-password';

interface Check {
  id: string;
  status: string;
  summary: string;
  hint: string | null;
}

/** Keystone v3 password auth with a catalog pointing at /neutron on the same server, and Neutron's GETs. */
function fakeOpenStack(): http.Server {
  return http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://x');
      const json = (status: number, body: unknown, headers: Record<string, string> = {}) => {
        res.writeHead(status, { 'Content-Type': 'application/json', ...headers });
        res.end(JSON.stringify(body));
      };
      if (req.method === 'POST' && url.pathname === '/v3/auth/tokens') {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
          auth: { identity: { password: { user: { password: string } } } };
        };
        if (body.auth.identity.password.user.password !== PASSWORD) {
          return json(401, {
            error: { code: 401, title: 'Unauthorized', message: 'The request you have made requires authentication.' },
          });
        }
        const port = (req.socket.localPort ?? 0).toString();
        return json(
          201,
          {
            token: {
              expires_at: new Date(Date.now() + 3_600_000).toISOString(),
              catalog: [
                { type: 'network', endpoints: [{ interface: 'public', url: `http://127.0.0.1:${port}/neutron` }] },
              ],
            },
          },
          { 'X-Subject-Token': 'tok' },
        );
      }
      if (req.headers['x-auth-token'] !== 'tok')
        return json(401, { error: { code: 401, title: 'Unauthorized', message: 'no token' } });
      if (url.pathname === '/neutron/v2.0/extensions') {
        const aliases = ['subnet_allocation', 'binding', 'security-group', 'standard-attr-tag'];
        return json(200, { extensions: aliases.map((alias) => ({ alias, name: alias, description: '' })) });
      }
      if (url.pathname === '/neutron/v2.0/subnetpools') {
        const name = url.searchParams.get('name') ?? '';
        const prefix = name === 'kuryr6' ? 'fd00::/48' : '10.10.0.0/16';
        return json(200, {
          subnetpools: [
            {
              id: `id-${name}`,
              name,
              prefixes: [prefix],
              default_prefixlen: 24,
              ip_version: name === 'kuryr6' ? 6 : 4,
              tags: [],
              shared: false,
            },
          ],
        });
      }
      json(404, { NeutronError: { type: 'HTTPNotFound', message: 'not here', detail: '' } });
    });
  });
}

describe('kuryr doctor --backend neutron', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kx-doctor-neutron-'));
  const server = fakeOpenStack();
  let port = 0;
  before(async () => {
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as { port: number }).port;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  /** Runs doctor (asynchronously: the fake OpenStack lives in this process) with a [neutron] section. */
  async function doctor(neutron: Record<string, string>): Promise<{ code: number | null; checks: Check[] }> {
    const conf = path.join(dir, `kuryr-${Math.random().toString(36).slice(2)}.conf`);
    writeFileSync(
      conf,
      `[neutron]\n${Object.entries(neutron)
        .map(([k, v]) => `${k} = ${v}`)
        .join('\n')}\n`,
    );
    const child = spawn(
      process.execPath,
      [
        MAIN,
        'doctor',
        '--json',
        '--backend',
        'neutron',
        '--config',
        conf,
        '--driver-name',
        'kxneutron',
        '--docker-host',
        `unix://${path.join(dir, 'none.sock')}`,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString('utf8');
    });
    const code = await new Promise<number | null>((r) => child.once('exit', r));
    return { code, checks: (JSON.parse(out) as { checks: Check[] }).checks };
  }
  const keystone = (password: string) => ({
    auth_type: 'password',
    auth_url: `http://127.0.0.1:${port}/v3`,
    username: 'kuryr',
    password,
    user_domain_name: 'Default',
    project_name: 'service',
    project_domain_name: 'Default',
  });
  const status = (checks: Check[], id: string) => checks.find((c) => c.id === id)!;

  test('good credentials: reachable, authenticated, extensions and default pools ok', async () => {
    const { checks } = await doctor(keystone(PASSWORD));
    for (const id of ['neutron.reachable', 'neutron.auth', 'neutron.extensions', 'backend.pools'])
      assert.equal(status(checks, id).status, 'ok', `${id}: ${status(checks, id).summary}`);
    assert.match(status(checks, 'backend.pools').summary, /kuryr \(10\.10\.0\.0\/16\)/);
    assert.equal(status(checks, 'state-dir').status, 'skip');
  });

  test('a wrong password: neutron.auth fails with a hint about the credentials; exit 1', async () => {
    const { code, checks } = await doctor(keystone('wrong'));
    assert.equal(code, 1);
    const auth = status(checks, 'neutron.auth');
    assert.equal(auth.status, 'fail');
    assert.match(auth.summary, /credentials refused: .*401/);
    assert.match(auth.hint ?? '', /password/);
    assert.equal(status(checks, 'neutron.extensions').status, 'skip');
  });

  test('Keystone not listening: neutron.reachable fails', async () => {
    const closed = await new Promise<number>((resolve) => {
      const s = http.createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    const { code, checks } = await doctor({ ...keystone(PASSWORD), auth_url: `http://127.0.0.1:${closed}/v3` });
    assert.equal(code, 1);
    assert.equal(status(checks, 'neutron.reachable').status, 'fail');
    assert.equal(status(checks, 'neutron.auth').status, 'skip');
  });

  test('a missing [neutron] option fails neutron.reachable naming the key', async () => {
    const { checks } = await doctor({ auth_type: 'password', username: 'u', password: 'p', project_name: 'x' });
    const r = status(checks, 'neutron.reachable');
    assert.equal(r.status, 'fail');
    assert.match(r.summary, /\[neutron\] auth_url/);
  });
});
