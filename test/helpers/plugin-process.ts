/**
 * End-to-end harness: the real plugin process, `bin/kuryr serve`, as dockerd would talk to it.
 *
 *   const plugin = await startPlugin({ driverName: 'kx-e2e1', stateDir });
 *   const { status, body } = await pluginCall(plugin.socket, 'NetworkDriver.GetCapabilities', {});
 *   await plugin.stop();
 *
 * The default socket is /run/docker/plugins/<driverName>.sock, where every dockerd looks for
 * legacy plugins: `docker network create -d <driverName> --ipam-driver <driverName>` then reaches
 * this process. Use a driver name of its own per test file. Run `npm run build` first (npm test does).
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export const REPO_ROOT = path.resolve(import.meta.dirname, '..', '..');
export const KURYR_BIN = path.join(REPO_ROOT, 'bin', 'kuryr');
export const PLUGIN_DIR = '/run/docker/plugins';

export interface PluginOptions {
  driverName: string;
  stateDir: string;
  /** default /run/docker/plugins/<driverName>.sock */
  socketPath?: string;
  /** more `serve` arguments, e.g. ['--log-level', 'debug'] */
  extraArgs?: string[];
  /** added to the inherited environment */
  env?: Record<string, string>;
  /** default <dirname(stateDir)>/<driverName>-plugin.log, appended to across restarts */
  logFile?: string;
  /** how long to wait for Plugin.Activate to answer 200 (default 30 s) */
  startTimeoutMs?: number;
  /**
   * run the plugin in this named network namespace (/run/netns/<netns>), e.g. the lab's second host: its veths
   * and bridges are made there. The unix socket is a file, reached from anywhere.
   */
  netns?: string;
  /** a program that execs bin/kuryr in place, e.g. `['nsenter', '--net=/run/netns/x']` */
  launcher?: string[];
}

export interface PluginExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface PluginProcess {
  /** pid of the current process (bin/kuryr execs node, so this is node's pid) */
  readonly pid: number;
  readonly socket: string;
  readonly logFile: string;
  readonly args: string[];
  /** signal (default SIGTERM), wait up to timeoutMs (default 10 s), then SIGKILL */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<PluginExit>;
  /** SIGKILL, as a crash: the socket file and state are left as they are */
  kill9(): Promise<PluginExit>;
  /** stop (SIGTERM) if running, then start again with the same arguments and wait until it answers */
  restart(): Promise<void>;
  /** the last lines of the log */
  logTail(lines?: number): string;
}

export interface PluginResponse<T = unknown> {
  status: number;
  /** parsed JSON, or the raw text when the answer is not JSON */
  body: T;
  raw: string;
}

/**
 * POSTs JSON to /<method> over the plugin's unix socket, as dockerd's plugin client does: a connection per call, or
 * over `agent` (kept alive, as dockerd keeps its connection to a plugin).
 */
export function pluginCall<T = unknown>(
  socket: string,
  method: string,
  body: unknown = {},
  timeoutMs = 10_000,
  agent?: http.Agent,
): Promise<PluginResponse<T>> {
  const payload = Buffer.from(JSON.stringify(body ?? {}));
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        socketPath: socket,
        method: 'POST',
        path: `/${method}`,
        headers: {
          Accept: 'application/vnd.docker.plugins.v1.2+json',
          'Content-Type': 'application/json',
          'Content-Length': payload.length,
          ...(agent === undefined ? { Connection: 'close' } : {}),
        },
        agent: agent ?? false,
        timeout: timeoutMs,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const raw = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown = raw;
          try {
            parsed = raw === '' ? raw : JSON.parse(raw);
          } catch {
            // not JSON: keep the text
          }
          resolve({ status: res.statusCode ?? 0, body: parsed as T, raw });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${method}: no answer within ${timeoutMs} ms on ${socket}`)));
    req.on('error', reject);
    req.end(payload);
  });
}

function tail(file: string, lines: number): string {
  try {
    return readFileSync(file, 'utf8')
      .split('\n')
      .slice(-lines - 1)
      .join('\n');
  } catch {
    return '(no log)';
  }
}

function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

function waitForExit(child: ChildProcess, timeoutMs: number): Promise<PluginExit | undefined> {
  if (exited(child)) return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      child.off('exit', onExit);
      resolve(undefined);
    }, timeoutMs);
    const onExit = (code: number | null, signal: NodeJS.Signals | null) => {
      clearTimeout(timer);
      resolve({ code, signal });
    };
    child.once('exit', onExit);
  });
}

const running = new Set<ChildProcess>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const child of running) {
      try {
        if (child.pid) process.kill(child.pid, 'SIGTERM');
      } catch {
        // already gone
      }
    }
  });
}

export async function startPlugin(opts: PluginOptions): Promise<PluginProcess> {
  if (!existsSync(path.join(REPO_ROOT, 'dist', 'cli', 'main.js'))) {
    throw new Error(`${REPO_ROOT}/dist/cli/main.js is missing: run npm run build`);
  }
  const socket = opts.socketPath ?? path.join(PLUGIN_DIR, `${opts.driverName}.sock`);
  const logFile = opts.logFile ?? path.join(path.dirname(path.resolve(opts.stateDir)), `${opts.driverName}-plugin.log`);
  const args = [
    'serve',
    '--driver-name',
    opts.driverName,
    '--state-dir',
    opts.stateDir,
    '--socket',
    socket,
    ...(opts.extraArgs ?? []),
  ];
  const startTimeout = opts.startTimeoutMs ?? 30_000;
  await mkdir(opts.stateDir, { recursive: true });
  await mkdir(path.dirname(socket), { recursive: true });
  await mkdir(path.dirname(logFile), { recursive: true });
  installExitHook();

  let child: ChildProcess;

  const launch = async (): Promise<void> => {
    const fd = openSync(logFile, 'a');
    try {
      const launcher =
        opts.launcher ?? (opts.netns === undefined ? undefined : ['nsenter', `--net=/run/netns/${opts.netns}`, '--']);
      const [program, ...before] = launcher ?? [];
      child = spawn(program ?? KURYR_BIN, program === undefined ? args : [...before, KURYR_BIN, ...args], {
        detached: true,
        stdio: ['ignore', fd, fd],
        env: { ...process.env, ...opts.env },
      });
    } finally {
      closeSync(fd);
    }
    const c = child;
    c.unref();
    running.add(c);
    c.once('exit', () => running.delete(c));
    let spawnError: Error | undefined;
    c.once('error', (e) => {
      spawnError = e;
    });
    const deadline = Date.now() + startTimeout;
    let last = '';
    for (;;) {
      const failure =
        spawnError?.message ??
        (exited(c)
          ? `bin/kuryr exited (code ${c.exitCode}, signal ${c.signalCode})`
          : Date.now() > deadline
            ? `no 200 to Plugin.Activate on ${socket} within ${startTimeout} ms (last: ${last})`
            : undefined);
      if (failure) {
        if (!exited(c) && c.pid) {
          try {
            process.kill(c.pid, 'SIGKILL');
          } catch {
            // gone
          }
          await waitForExit(c, 5_000);
        }
        throw new Error(`plugin ${opts.driverName}: ${failure}\n--- ${logFile} (tail) ---\n${tail(logFile, 30)}`);
      }
      if (existsSync(socket)) {
        try {
          const r = await pluginCall(socket, 'Plugin.Activate', {}, 2_000);
          if (r.status === 200) return;
          last = `HTTP ${r.status} ${r.raw.slice(0, 200)}`;
        } catch (e) {
          last = e instanceof Error ? e.message : String(e);
        }
      } else {
        last = 'no socket yet';
      }
      await sleep(100);
    }
  };

  const stop = async (signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 10_000): Promise<PluginExit> => {
    const c = child;
    if (exited(c) || c.pid === undefined) return { code: c.exitCode, signal: c.signalCode };
    try {
      process.kill(c.pid, signal);
    } catch {
      // gone
    }
    const r = await waitForExit(c, timeoutMs);
    if (r) return r;
    try {
      process.kill(c.pid, 'SIGKILL');
    } catch {
      // gone
    }
    return (await waitForExit(c, 5_000)) ?? { code: null, signal: 'SIGKILL' };
  };

  await launch();

  return {
    get pid() {
      return child.pid ?? -1;
    },
    socket,
    logFile,
    args,
    stop,
    kill9: () => stop('SIGKILL', 5_000),
    restart: async () => {
      await stop();
      await launch();
    },
    logTail: (lines = 30) => tail(logFile, lines),
  };
}
