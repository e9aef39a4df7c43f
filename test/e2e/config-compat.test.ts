// kuryr.conf files written as real deployments write the original's load through the real loader and work
// against the real Keystone + Neutron lab: kolla-ansible's (auth_uri, unversioned auth_url, endpoint_type
// internal, log_dir), devstack's (keystonemiddleware keys in [neutron], an empty cafile), the original's full
// generated sample with the credentials set, and a password holding ";" and " #" (a Keystone user the test
// creates and deletes). Each file selects the Neutron backend by itself (no --backend) and `kuryr doctor`
// authenticates with it; the kolla-ansible file also runs `kuryr-server`, which logs to <log_dir>/kuryr-server.log
// and creates (then releases) a subnet pool in Neutron through the plugin API.
// Run under the lab lock: flock /tmp/kuryr-e2e.lock node --test --test-concurrency=1 test/e2e/config-compat.test.ts
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openNeutronHttp } from '../../src/neutron/http/index.ts';
import { neutronConfSection, neutronLab } from '../helpers/neutron-lab.ts';
import { KURYR_BIN, pluginCall, REPO_ROOT } from '../helpers/plugin-process.ts';

const lab = await neutronLab();
const FIXTURES = path.join(REPO_ROOT, 'test', 'fixtures', 'kuryr-conf');
const KURYR_SERVER = path.join(REPO_ROOT, 'bin', 'kuryr-server');
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

interface Report {
  checks: { id: string; status: string; summary: string; hint: string | null }[];
}

/** Keystone v3 admin calls with the lab's (admin) kuryr user: create and delete a user for the password test. */
class KeystoneAdmin {
  private token = '';
  private readonly authUrl: string;
  private readonly creds: { username: string; password: string; project: string; domain: string };
  constructor(authUrl: string, creds: { username: string; password: string; project: string; domain: string }) {
    this.authUrl = authUrl;
    this.creds = creds;
  }

  async login(): Promise<void> {
    const res = await fetch(`${this.authUrl}/auth/tokens`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({
        auth: {
          identity: {
            methods: ['password'],
            password: {
              user: { name: this.creds.username, domain: { name: this.creds.domain }, password: this.creds.password },
            },
          },
          scope: { project: { name: this.creds.project, domain: { name: this.creds.domain } } },
        },
      }),
    });
    await res.arrayBuffer();
    assert.equal(res.status, 201, 'lab admin login');
    this.token = res.headers.get('x-subject-token') ?? '';
  }

  async call<T>(method: string, urlPath: string, body?: unknown): Promise<T> {
    const res = await fetch(`${this.authUrl}${urlPath}`, {
      method,
      headers: { 'X-Auth-Token': this.token, 'Content-Type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    assert.ok(res.ok, `${method} ${urlPath}: ${res.status} ${text}`);
    return (text === '' ? {} : JSON.parse(text)) as T;
  }

  async idOf(kind: 'projects' | 'roles', name: string): Promise<string> {
    const found = await this.call<Record<string, { id: string }[]>>('GET', `/${kind}?name=${encodeURIComponent(name)}`);
    const id = found[kind]?.[0]?.id;
    assert.ok(id, `${kind} ${name} not found`);
    return id;
  }
}

describe('kuryr.conf fixtures against the real Keystone + Neutron', { skip: lab.skip.keystone }, () => {
  const k = lab.keystone!;
  const tag = Math.random().toString(36).slice(2, 8);
  const unversioned = k.authUrl.replace(/\/v3\/?$/, '');
  // ";" and " #" anywhere: the old parser cut this password at the ";".
  const trickyPassword = `pa;ss #wo;rd#${tag}`;
  const trickyUser = `kuryr-cfg-${tag}`;
  let dir: string;
  let admin: KeystoneAdmin;
  let trickyUserId: string | undefined;

  const render = (fixture: string, vars: Record<string, string>): string => {
    let text = readFileSync(path.join(FIXTURES, fixture), 'utf8');
    for (const [name, value] of Object.entries(vars)) text = text.replaceAll(`@${name}@`, value);
    assert.doesNotMatch(text, /@[A-Z0-9_]+@/, `${fixture}: a placeholder is left`);
    const file = path.join(dir, fixture);
    writeFileSync(file, text, { mode: 0o600 });
    return file;
  };
  const labVars = (over: Record<string, string> = {}) => ({
    KEYSTONE_URL: unversioned,
    KEYSTONE_V3_URL: k.authUrl,
    USERNAME: k.username,
    PASSWORD: k.password,
    PROJECT: k.projectName,
    REGION: k.regionName,
    LOG_DIR: path.join(dir, 'log'),
    ...over,
  });
  /** The environment of a kuryr command: nothing that chooses the backend or credentials but the file. */
  const cleanEnv = () => {
    const env: NodeJS.ProcessEnv = { ...process.env };
    for (const v of ['KURYR_BACKEND', 'SERVICE_USER', 'SERVICE_PASSWORD', 'IDENTITY_URL', 'LOG_LEVEL', 'DOCKER_HOST'])
      delete env[v];
    return env;
  };
  const doctor = (conf: string) => {
    const r = spawnSync(
      KURYR_BIN,
      [
        'doctor',
        '--json',
        '--config-file',
        conf,
        '--driver-name',
        `kxcfg${tag}`,
        '--state-dir',
        path.join(dir, 'state'),
        '--docker-host',
        `unix://${path.join(dir, 'no-docker.sock')}`,
      ],
      { encoding: 'utf8', env: cleanEnv(), timeout: 120_000 },
    );
    assert.ok(r.stdout.startsWith('{'), `doctor printed no JSON: ${r.stdout}${r.stderr}`);
    const report = JSON.parse(r.stdout) as Report;
    return (id: string) => report.checks.find((c) => c.id === id)!;
  };
  /** Loads through the real loader (via `kuryr doctor`) and authenticates against the lab. */
  const assertWorks = (conf: string, expectedWarnings: RegExp[] = []) => {
    const check = doctor(conf);
    const config = check('config');
    assert.match(config.summary, /backend neutron/, config.summary);
    assert.equal(config.status, expectedWarnings.length === 0 ? 'ok' : 'warn', config.summary);
    for (const w of expectedWarnings) assert.match(config.summary, w);
    assert.equal(check('neutron.reachable').status, 'ok', check('neutron.reachable').summary);
    assert.equal(check('neutron.auth').status, 'ok', check('neutron.auth').summary);
  };

  before(async () => {
    assert.ok(existsSync(path.join(REPO_ROOT, 'dist', 'cli', 'main.js')), 'run npm run build first');
    dir = mkdtempSync(path.join(os.tmpdir(), 'kx-config-e2e-'));
    mkdirSync(path.join(dir, 'log'));
    admin = new KeystoneAdmin(k.authUrl, {
      username: k.username,
      password: k.password,
      project: k.projectName,
      domain: k.userDomainName,
    });
    await admin.login();
  });

  after(async () => {
    if (trickyUserId !== undefined) await admin.call('DELETE', `/users/${trickyUserId}`);
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it("kolla-ansible's kuryr.conf: auth_uri is tolerated, the unversioned auth_url and endpoint_type internal work", () => {
    // No warning: [neutron] auth_uri, [binding] default_driver and [DEFAULT] kuryr_uri are known options.
    assertWorks(render('kolla-ansible.conf', labVars()));
  });

  it("devstack's kuryr.conf: keystonemiddleware keys are one warning each, the empty cafile is unset", () => {
    assertWorks(render('devstack.conf', labVars()), [
      /unknown option \[neutron\] memcached_servers ignored/,
      /unknown option \[neutron\] signing_dir ignored/,
    ]);
  });

  it("the original's full generated sample with the credentials set", () => {
    assertWorks(render('original-sample.conf', labVars()));
  });

  it('a password with ";" and " #" authenticates (a user created for the test)', async () => {
    const projectId = await admin.idOf('projects', k.projectName);
    const roleId = await admin.idOf('roles', 'member');
    const created = await admin.call<{ user: { id: string } }>('POST', '/users', {
      user: { name: trickyUser, password: trickyPassword, domain_id: 'default', enabled: true },
    });
    trickyUserId = created.user.id;
    await admin.call('PUT', `/projects/${projectId}/users/${trickyUserId}/roles/${roleId}`);
    const conf = render('password.conf', labVars({ USERNAME: trickyUser, PASSWORD: trickyPassword }));
    assertWorks(conf);
    // The same file with the password cut where an INI parser that treats ";" as a comment cuts it: refused.
    const cut = render('password.conf', labVars({ USERNAME: trickyUser, PASSWORD: 'pa' }));
    const check = doctor(cut);
    assert.equal(check('neutron.auth').status, 'fail', check('neutron.auth').summary);
  });

  it('kuryr-server with the kolla-ansible file: logs to <log_dir>/kuryr-server.log, creates a pool in Neutron', async () => {
    const conf = render('kolla-ansible.conf', labVars());
    const socket = path.join(dir, 'kx.sock');
    const logFile = path.join(dir, 'log', 'kuryr-server.log');
    const neutron = openNeutronHttp(
      Object.fromEntries(
        neutronConfSection(lab, 'keystone')
          .split('\n')
          .slice(1)
          .filter((l) => l.includes(' = '))
          .map((l) => l.split(' = ') as [string, string]),
      ),
    );
    const stderrFile = path.join(dir, 'server.stderr');
    let child: ChildProcess | undefined;
    let poolId: string | undefined;
    const cidr = `10.${200 + Math.floor(Math.random() * 50)}.${Math.floor(Math.random() * 250)}.0/24`;
    try {
      const fd = openSync(stderrFile, 'a');
      child = spawn(
        KURYR_SERVER,
        [
          '--config-file',
          conf,
          '--socket',
          socket,
          '--driver-name',
          `kxcfg${tag}`,
          '--state-dir',
          path.join(dir, 'state'),
          '--docker-host',
          `unix://${path.join(dir, 'no-docker.sock')}`,
        ],
        { stdio: ['ignore', fd, fd], env: cleanEnv() },
      );
      closeSync(fd);
      const deadline = Date.now() + 60_000;
      let activated = false;
      while (!activated && Date.now() < deadline && child.exitCode === null) {
        if (existsSync(socket)) {
          const r = await pluginCall(socket, 'Plugin.Activate', {}).catch(() => undefined);
          activated = r?.status === 200;
        }
        if (!activated) await sleep(200);
      }
      assert.ok(activated, `kuryr-server did not start: ${readFileSync(stderrFile, 'utf8')}`);

      const pool = await pluginCall<{ PoolID?: string; Err?: string }>(socket, 'IpamDriver.RequestPool', {
        AddressSpace: '',
        Pool: cidr,
        SubPool: '',
        Options: {},
        V6: false,
      });
      assert.equal(pool.status, 200, pool.raw);
      poolId = pool.body.PoolID;
      const inNeutron = await neutron.listSubnetPools({});
      assert.ok(
        inNeutron.some((p) => p.prefixes.includes(cidr)),
        `no subnet pool with ${cidr} in Neutron after RequestPool`,
      );
      const released = await pluginCall(socket, 'IpamDriver.ReleasePool', { PoolID: poolId });
      assert.equal(released.status, 200, released.raw);
      poolId = undefined;

      const log = readFileSync(logFile, 'utf8');
      assert.match(log, /"msg":"kuryr-ts serving on unix /, 'serving line in <log_dir>/kuryr-server.log');
      assert.match(log, /"backend":"neutron"/);
      assert.doesNotMatch(log, /"level":20/, 'debug = False: no debug lines');
      assert.doesNotMatch(readFileSync(stderrFile, 'utf8'), /kuryr-ts serving/, 'no use_stderr: not on stderr');
    } finally {
      if (poolId !== undefined) await pluginCall(socket, 'IpamDriver.ReleasePool', { PoolID: poolId }).catch(() => {});
      if (child !== undefined && child.exitCode === null) {
        const exited = new Promise((resolve) => child?.once('exit', resolve));
        child.kill('SIGTERM');
        await Promise.race([exited, sleep(15_000)]);
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      }
      // Only what this test made: the lab is shared, and the server's start-up gc may remove an older run's
      // leftover pools meanwhile (a whole-lab snapshot then differs for a reason that is not this test's).
      const left = (await neutron.listSubnetPools({})).filter((p) => p.prefixes.includes(cidr));
      await neutron.close();
      assert.deepEqual(left, [], 'no subnet pool left behind');
    }
  });
});
