/**
 * One end-to-end fixture: a private dockerd, the real plugin process on a driver name of its own, a temp dir
 * (with kuryr.conf), and for the Neutron backend a client on the lab and what Neutron held before.
 *
 *   describe('...', { skip }, () => {
 *     const env = e2eFixture({ name: 'nq', driverPrefix: 'kq', backend: 'neutron', lab, mode: 'noauth' });
 *     it('...', async () => {
 *       await env.engine.dockerOk(['network', 'create', '-d', env.driver, '--ipam-driver', env.driver, 'n']);
 *     });
 *   });
 *
 * e2eFixture() registers node:test `before`/`after` hooks in the enclosing describe (so a skipped describe
 * starts nothing). Set-up: temp dir → Neutron client and snapshot → `setup` → kuryr.conf → engine → `engineStarted`
 * → busybox:local → plugin → `started`. Teardown always runs every step, in this order, each even when an earlier one failed:
 * `teardown` (the file's own Docker-side clean-up) → containers and networks removed (`removeAll`) → engine stopped
 * (its containers killed first) → plugin stopped and its socket gone from /run/docker/plugins → `cleanup` (the
 * file's own Neutron resources) → Neutron client closed → temp dir removed (kept with KX_KEEP=1). The first
 * error is thrown once all steps ran.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before } from 'node:test';
import { openNeutronHttp } from '../../src/neutron/http/index.ts';
import {
  ensureBusyboxImage,
  type PrivateDockerd,
  type PrivateDockerdOptions,
  startPrivateDockerd,
} from './docker-engine.ts';
import { type NeutronLab, type NeutronSnapshot, neutronConfSection, neutronSnapshot } from './neutron-lab.ts';
import { type PluginOptions, type PluginProcess, startPlugin } from './plugin-process.ts';

export type NeutronClient = ReturnType<typeof openNeutronHttp>;

export interface E2eOptions {
  /** a short label: the engine is `<name>-<tag>`, the temp dir <tmpRoot>/kx-<name>-XXXXXX */
  name: string;
  /** where the temp dir is made (default os.tmpdir()) */
  tmpRoot?: string;
  /** the driver name is `<driverPrefix><tag>` (default `kx`): a prefix per file, a tag per run */
  driverPrefix?: string;
  /** `neutron` passes `--backend neutron` and needs `lab` and `mode` (default `embedded`) */
  backend?: 'embedded' | 'neutron';
  lab?: NeutronLab;
  /** the lab endpoint: the Neutron client, the snapshot and the default kuryr.conf use it */
  mode?: 'keystone' | 'noauth';
  /**
   * kuryr.conf's text (written 0600 to <dir>/kuryr.conf, passed as `--config`); default: the lab's `[neutron]`
   * section for the Neutron backend, no file for the embedded one. A function sees the fixture (after `setup`).
   */
  conf?: string | ((env: E2eEnv) => string);
  /** more `serve` arguments after `--backend`, `--config` and `--docker-host` */
  pluginArgs?: string[];
  /** environment of the plugin process */
  pluginEnv?: Record<string, string>;
  /** pass `--docker-host <engine>` to the plugin (default: with the Neutron backend) */
  dockerHost?: boolean;
  /** false: the file starts (and may restart) its own plugin process; the fixture only stops it (default true) */
  plugin?: boolean;
  /**
   * run dockerd and the plugin in this named network namespace (made by `setup`, say); a function is asked after
   * `setup`, for a namespace whose name `setup` chose
   */
  netns?: string | ((env: E2eEnv) => string);
  /** more options of the private dockerd (firewall, launcher, extraArgs) */
  engine?: Omit<PrivateDockerdOptions, 'name'>;
  /** import busybox:local into the engine (default true) */
  busybox?: boolean;
  /** take a Neutron snapshot before anything starts (default: with a Neutron client) */
  snapshot?: boolean;
  /** before the teardown stops the engine: `docker rm -f` every container, then `docker network rm` every network */
  removeAll?: boolean;
  /** after the Neutron client, before kuryr.conf and the engine (e.g. the operator's own resources) */
  setup?: (env: E2eEnv) => Promise<void> | void;
  /** once the engine answers, before busybox:local and the plugin */
  engineStarted?: (env: E2eEnv) => Promise<void> | void;
  /** after the plugin answers */
  started?: (env: E2eEnv) => Promise<void> | void;
  /** first in the teardown, while engine and plugin run (the file's own Docker-side clean-up) */
  teardown?: (env: E2eEnv) => Promise<void> | void;
  /** after the plugin stopped, before the Neutron client closes (the file's own Neutron resources) */
  cleanup?: (env: E2eEnv) => Promise<void> | void;
}

export interface E2eEnv {
  /** random, per run: part of the driver and engine names */
  readonly tag: string;
  /** the plugin's driver (and IPAM driver) name */
  readonly driver: string;
  /** the temp dir; the plugin's state is <dir>/state */
  readonly dir: string;
  readonly stateDir: string;
  /** <dir>/kuryr.conf (written only when there is a conf) */
  readonly confFile: string;
  readonly engine: PrivateDockerd;
  /** the plugin process (throws before it started, or with `plugin: false` until `usePlugin`) */
  readonly plugin: PluginProcess;
  /** the plugin, or undefined when none was started */
  readonly pluginOrUndefined: PluginProcess | undefined;
  /** the Neutron client (Neutron backend only) */
  readonly neutron: NeutronClient;
  /** what Neutron held before the set-up */
  readonly before: NeutronSnapshot;
  /** the lab's `[neutron]` section for `mode` */
  readonly neutronSection: string;
  /** the arguments the fixture passes to `serve`, before `pluginArgs` */
  readonly serveArgs: string[];
  /** starts the plugin with the fixture's arguments plus `extra` (stops the previous one first) */
  startPlugin(
    extra?: { args?: string[]; env?: Record<string, string> } & Partial<PluginOptions>,
  ): Promise<PluginProcess>;
  /** `docker network create -d <driver> --ipam-driver <driver> ...args name` */
  netCreate(name: string, args?: string[]): Promise<string>;
}

/** `key = value` lines of a kuryr.conf section, as openNeutronHttp takes them */
export function sectionRecord(section: string): Record<string, string> {
  return Object.fromEntries(
    section
      .split('\n')
      .filter((l) => l.includes(' = '))
      .map((l) => l.split(' = ') as [string, string]),
  );
}

function defined<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new Error(`e2e fixture: no ${what} (not set up yet, or not asked for)`);
  return value;
}

export function e2eFixture(opts: E2eOptions): E2eEnv {
  const tag = Math.random().toString(36).slice(2, 8);
  const driver = `${opts.driverPrefix ?? 'kx'}${tag}`;
  const backend = opts.backend ?? 'embedded';
  let dir: string | undefined;
  let engine: PrivateDockerd | undefined;
  let plugin: PluginProcess | undefined;
  let neutron: NeutronClient | undefined;
  let snapshot: NeutronSnapshot | undefined;
  let hasConf = false;
  let netns: string | undefined;

  const neutronSection = (): string => {
    const lab = defined(opts.lab, 'Neutron lab');
    return neutronConfSection(lab, defined(opts.mode, 'Neutron mode'));
  };
  const serveArgs = (): string[] => [
    ...(backend === 'neutron' ? ['--backend', 'neutron'] : []),
    ...(hasConf ? ['--config', env.confFile] : []),
    ...((opts.dockerHost ?? backend === 'neutron') ? ['--docker-host', defined(engine, 'engine').host] : []),
  ];

  const env: E2eEnv = {
    tag,
    driver,
    get dir() {
      return defined(dir, 'temp dir');
    },
    get stateDir() {
      return path.join(defined(dir, 'temp dir'), 'state');
    },
    get confFile() {
      return path.join(defined(dir, 'temp dir'), 'kuryr.conf');
    },
    get engine() {
      return defined(engine, 'engine');
    },
    get plugin() {
      return defined(plugin, 'plugin');
    },
    get pluginOrUndefined() {
      return plugin;
    },
    get neutron() {
      return defined(neutron, 'Neutron client');
    },
    get before() {
      return defined(snapshot, 'Neutron snapshot');
    },
    get neutronSection() {
      return neutronSection();
    },
    get serveArgs() {
      return serveArgs();
    },
    async startPlugin(extra = {}) {
      const { args = [], env: extraEnv, ...rest } = extra;
      await plugin?.stop();
      plugin = await startPlugin({
        driverName: driver,
        stateDir: env.stateDir,
        extraArgs: [...serveArgs(), ...(opts.pluginArgs ?? []), ...args],
        env: { ...opts.pluginEnv, ...extraEnv },
        ...(netns !== undefined && { netns }),
        ...rest,
      });
      return plugin;
    },
    netCreate: (name, args = []) =>
      env.engine.dockerOk(['network', 'create', '-d', driver, '--ipam-driver', driver, ...args, name]),
  };

  before(async () => {
    dir = mkdtempSync(path.join(opts.tmpRoot ?? os.tmpdir(), `kx-${opts.name}-`));
    if (backend === 'neutron' || opts.mode !== undefined) {
      neutron = openNeutronHttp(sectionRecord(neutronSection()));
      if (opts.snapshot ?? true) snapshot = await neutronSnapshot(neutron);
    }
    await opts.setup?.(env);
    netns = typeof opts.netns === 'function' ? opts.netns(env) : opts.netns;
    const conf =
      typeof opts.conf === 'function'
        ? opts.conf(env)
        : (opts.conf ?? (backend === 'neutron' ? neutronSection() : undefined));
    if (conf !== undefined) {
      writeFileSync(env.confFile, conf, { mode: 0o600 });
      hasConf = true;
    }
    engine = await startPrivateDockerd({
      ...opts.engine,
      ...(netns !== undefined && { netns }),
      name: `${opts.name}-${tag}`,
    });
    await opts.engineStarted?.(env);
    if (opts.busybox ?? true) await ensureBusyboxImage(engine);
    if (opts.plugin ?? true) await env.startPlugin();
    await opts.started?.(env);
  });

  after(async () => {
    const errors: unknown[] = [];
    const step = async (run: () => Promise<unknown> | unknown) => {
      try {
        await run();
      } catch (e) {
        errors.push(e);
      }
    };
    if (engine !== undefined) {
      const e = engine;
      if (opts.teardown) await step(() => opts.teardown?.(env));
      if (opts.removeAll) {
        await step(async () => {
          const ids = (await e.docker(['ps', '-aq'])).stdout.split('\n').filter(Boolean);
          if (ids.length > 0) await e.docker(['rm', '-f', ...ids]);
          const nets = (await e.docker(['network', 'ls', '-q', '--filter', `driver=${driver}`])).stdout
            .split('\n')
            .filter(Boolean);
          for (const n of nets) await e.docker(['network', 'rm', n]);
        });
      }
      await step(() => e.stop({ killContainers: true }));
    }
    if (plugin !== undefined) {
      const p = plugin;
      await step(async () => {
        await p.stop();
        // a plugin killed with SIGKILL leaves its socket: dockerd would still find the driver name
        if (existsSync(p.socket)) rmSync(p.socket, { force: true });
      });
    }
    if (opts.cleanup) await step(() => opts.cleanup?.(env));
    if (neutron !== undefined) {
      const n = neutron;
      await step(() => n.close());
    }
    if (dir !== undefined && process.env.KX_KEEP !== '1') {
      const d = dir;
      await step(() => rmSync(d, { recursive: true, force: true }));
    }
    if (errors.length > 0) throw errors[0];
  });

  return env;
}
