/**
 * End-to-end harness: a private, throw-away Docker engine (dockerd 20.10 from Debian's docker.io).
 *
 * Each engine has its own API socket, --data-root, --exec-root, pid file, log file, containerd
 * (started by dockerd under the exec-root) and containerd namespaces, so it shares no containers,
 * images or networks with any other dockerd on the machine. It has no default bridge, and writes
 * no iptables rules. What it does share with every dockerd: legacy plugin discovery in
 * /run/docker/plugins (so give each test plugin its own driver name).
 *
 *   const engine = await startPrivateDockerd({ name: 'e2e' });
 *   try {
 *     await ensureBusyboxImage(engine);
 *     await engine.dockerOk(['run', '--rm', '--net', 'none', 'busybox:local', 'true']);
 *   } finally {
 *     await engine.stop();
 *   }
 *
 * Needs root. KX_KEEP=1 keeps the engine's directory (and its dockerd.log) after stop().
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, openSync, closeSync, readdirSync, readFileSync } from 'node:fs';
import { chmod, copyFile, mkdir, mkdtemp, open, readFile, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export interface DockerResult {
  stdout: string;
  stderr: string;
  /** exit code; 128 + signal number when the CLI was killed (124 on our timeout) */
  code: number;
}

export interface DockerCallOptions {
  /** written to the CLI's stdin */
  input?: string | Buffer;
  /** default 120 s; the CLI is killed after it */
  timeoutMs?: number;
  env?: Record<string, string>;
}

export interface PrivateDockerdOptions {
  /** a label for messages (default 'dockerd') */
  name?: string;
  /** extra dockerd arguments, e.g. ['--debug'] */
  extraArgs?: string[];
  /** how long to wait for `docker version` to answer (default 60 s) */
  startTimeoutMs?: number;
  /**
   * run dockerd in this named network namespace (/run/netns/<netns>), e.g. the lab's second host
   * (test/helpers/second-host.ts); `nsenter --net` leaves the mounts alone (`ip netns exec` would remount /sys
   * and hide the cgroup tree dockerd needs). The API socket is a file: the CLI reaches it from anywhere.
   */
  netns?: string;
  /** dockerd's own firewall defaults (`--iptables=true`, masquerading) instead of none; use it only with `netns` */
  firewall?: boolean;
  /**
   * a program that execs dockerd in place (so the pid stays dockerd's), e.g. `['nsenter', '--net=/run/netns/x']`
   * to run the engine in a network namespace
   */
  launcher?: string[];
}

export interface PrivateDockerd {
  readonly name: string;
  /** the dockerd's pid (its process group id too) */
  readonly pid: number;
  /** the private API socket, e.g. /tmp/kx-AbC123/docker.sock */
  readonly socket: string;
  /** `unix://<socket>`, for DOCKER_HOST or -H */
  readonly host: string;
  /** the engine's own directory (holds everything below) */
  readonly root: string;
  readonly dataRoot: string;
  readonly execRoot: string;
  readonly logFile: string;
  /** the docker CLI used */
  readonly dockerBin: string;
  /** runs `docker -H <host> ...args`; never throws on a non-zero exit */
  docker(args: string[], opts?: DockerCallOptions): Promise<DockerResult>;
  /** like docker() but throws (with stderr) on a non-zero exit; resolves to stdout */
  dockerOk(args: string[], opts?: DockerCallOptions): Promise<string>;
  /** the last lines of dockerd's log */
  logTail(lines?: number): string;
  /**
   * SIGTERM, SIGKILL after timeoutMs (default 30 s), then unmount and remove the engine's directory.
   * dockerd stops running containers on the way out, each with its stop timeout (10 s by default,
   * and `sleep` as PID 1 ignores SIGTERM): killContainers: true first runs `docker kill` on them.
   */
  stop(opts?: { timeoutMs?: number; killContainers?: boolean }): Promise<void>;
}

const DOCKERD_CANDIDATES = ['/usr/sbin/dockerd', '/usr/bin/dockerd'];
/** the docker.io client (20.10) first; /usr/local/bin/docker may be a newer client */
const DOCKER_CLI_CANDIDATES = ['/usr/bin/docker', '/usr/local/bin/docker'];

function firstExisting(candidates: string[], what: string): string {
  for (const c of candidates) if (existsSync(c)) return c;
  for (const dir of (process.env.PATH ?? '').split(':')) {
    const c = path.join(dir || '.', path.basename(candidates[0] ?? what));
    if (dir && existsSync(c)) return c;
  }
  throw new Error(`${what} not found (looked at ${candidates.join(', ')} and PATH): run scripts/setup.sh as root`);
}

export function findDockerCli(): string {
  return firstExisting(DOCKER_CLI_CANDIDATES, 'docker');
}

export function findDockerd(): string {
  return firstExisting(DOCKERD_CANDIDATES, 'dockerd');
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

/** true while the process exists and is not a zombie */
export function processAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

/** pids of live processes whose command line mentions `needle` (not our own process) */
export function processesMentioning(needle: string): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (pid === process.pid) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8').replaceAll('\0', ' ');
      if (cmdline.includes(needle) && processAlive(pid)) out.push(pid);
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/**
 * live init processes of the containers of the engine with this exec-root, from containerd's
 * task state (<exec-root>/containerd/daemon/io.containerd.runtime.v2.task/<ns>/<container id>/init.pid);
 * a pid counts only while its cgroup still names the container id (no reused pid is taken).
 */
export function containerInits(execRoot: string): number[] {
  const base = path.join(execRoot, 'containerd', 'daemon', 'io.containerd.runtime.v2.task');
  const out: number[] = [];
  const list = (dir: string) => {
    try {
      return readdirSync(dir);
    } catch {
      return [];
    }
  };
  for (const ns of list(base)) {
    for (const id of list(path.join(base, ns))) {
      try {
        const pid = Number(readFileSync(path.join(base, ns, id, 'init.pid'), 'utf8').trim());
        if (!Number.isInteger(pid) || pid <= 1 || !processAlive(pid)) continue;
        if (readFileSync(`/proc/${pid}/cgroup`, 'utf8').includes(id)) out.push(pid);
      } catch {
        // no pid file, or the process is gone
      }
    }
  }
  return out;
}

/** mount points at or below dir in this mount namespace, deepest first */
export function mountsUnder(dir: string): string[] {
  const decodeOctal = (s: string) =>
    s.replace(/\\([0-7]{3})/g, (_m, oct: string) => String.fromCharCode(parseInt(oct, 8)));
  const points = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter((p): p is string => p !== undefined)
    .map(decodeOctal)
    .filter((p) => p === dir || p.startsWith(`${dir}/`));
  return [...new Set(points)].sort((a, b) => b.length - a.length);
}

function signalNumber(signal: NodeJS.Signals | null): number {
  const table: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15 };
  return signal ? (table[signal] ?? 0) : 0;
}

/** runs a command with an argument array; never throws on a non-zero exit */
export function runCommand(
  file: string,
  args: string[],
  opts: DockerCallOptions & { cwd?: string } = {},
): Promise<DockerResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      cwd: opts.cwd,
      env: { ...process.env, ...opts.env },
      stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, opts.timeoutMs ?? 120_000);
    child.stdout?.on('data', (b: Buffer) => out.push(b));
    child.stderr?.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      let stderr = Buffer.concat(err).toString('utf8');
      if (timedOut)
        stderr += `\n[${path.basename(file)} ${args.join(' ')}: killed after ${opts.timeoutMs ?? 120_000} ms]`;
      resolve({
        stdout: Buffer.concat(out).toString('utf8'),
        stderr,
        code: timedOut ? 124 : (code ?? 128 + signalNumber(signal)),
      });
    });
    if (opts.input !== undefined && child.stdin) {
      child.stdin.on('error', () => {}); // EPIPE when the command does not read its input
      child.stdin.end(opts.input);
    }
  });
}

function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

function waitForExit(child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (exited(child)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      child.off('exit', onExit);
      resolve(false);
    }, timeoutMs);
    const onExit = () => {
      clearTimeout(timer);
      resolve(true);
    };
    child.once('exit', onExit);
  });
}

async function waitUntilGone(pids: number[], timeoutMs: number): Promise<number[]> {
  const end = Date.now() + timeoutMs;
  let left = pids.filter(processAlive);
  while (left.length > 0 && Date.now() < end) {
    await sleep(100);
    left = left.filter(processAlive);
  }
  return left;
}

/** engines not stopped yet, signalled if the test process exits without stop() */
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

export async function startPrivateDockerd(opts: PrivateDockerdOptions = {}): Promise<PrivateDockerd> {
  if (process.getuid?.() !== 0) throw new Error('startPrivateDockerd needs root');
  const name = opts.name ?? 'dockerd';
  const dockerd = findDockerd();
  const dockerBin = findDockerCli();
  // Keep this short: containerd's and libnetwork's unix sockets live under the exec-root
  // (<exec-root>/libnetwork/<64 hex>.sock must stay below the 108-byte sun_path limit).
  const root = await mkdtemp('/tmp/kx-');
  const dataRoot = path.join(root, 'data');
  const execRoot = path.join(root, 'x');
  const socket = path.join(root, 'docker.sock');
  const host = `unix://${socket}`;
  const logFile = path.join(root, 'dockerd.log');
  const pidFile = path.join(root, 'dockerd.pid');
  const configFile = path.join(root, 'daemon.json');
  const cliConfig = path.join(root, 'cli');
  const tag = path.basename(root).replace(/[^A-Za-z0-9]/g, '');
  await mkdir(dataRoot, { recursive: true });
  await mkdir(execRoot, { recursive: true });
  await mkdir(cliConfig, { recursive: true });
  // an explicit, empty config: never read the machine's /etc/docker/daemon.json
  await writeFile(configFile, '{}\n');

  const args = [
    '-H',
    host,
    '--config-file',
    configFile,
    '--data-root',
    dataRoot,
    '--exec-root',
    execRoot,
    '--pidfile',
    pidFile,
    '--containerd-namespace',
    `${tag}`,
    '--containerd-plugins-namespace',
    `${tag}-plugins`,
    '--bridge=none',
    ...(opts.firewall === true ? [] : ['--iptables=false', '--ip6tables=false', '--ip-masq=false']),
    ...(opts.extraArgs ?? []),
  ];
  if (opts.firewall === true && opts.netns === undefined) throw new Error('firewall: true needs a private netns');
  const logFd = openSync(logFile, 'a');
  let child: ChildProcess;
  try {
    // a launcher (or nsenter for `netns`) execs dockerd in place: the pid (and process group) stay dockerd's
    const launcher =
      opts.launcher ?? (opts.netns === undefined ? undefined : ['nsenter', `--net=/run/netns/${opts.netns}`, '--']);
    const [program, ...before] = launcher ?? [];
    child = spawn(program ?? dockerd, program === undefined ? args : [...before, dockerd, ...args], {
      detached: true, // own session and process group: pgid == pid
      stdio: ['ignore', logFd, logFd],
      env: { ...process.env, PATH: process.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' },
    });
  } finally {
    closeSync(logFd);
  }
  child.unref();
  const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));
  let spawnFailure: Error | undefined;
  void spawnError.then((e) => {
    spawnFailure = e;
  });
  running.add(child);
  installExitHook();

  const cliEnv = { DOCKER_CONFIG: cliConfig, DOCKER_HOST: '', DOCKER_CONTEXT: '' };
  const docker = (dargs: string[], dopts: DockerCallOptions = {}): Promise<DockerResult> =>
    runCommand(dockerBin, ['-H', host, ...dargs], { ...dopts, env: { ...cliEnv, ...dopts.env } });
  const dockerOk = async (dargs: string[], dopts: DockerCallOptions = {}): Promise<string> => {
    const r = await docker(dargs, dopts);
    if (r.code !== 0) {
      throw new Error(`docker ${dargs.join(' ')} failed (exit ${r.code}): ${r.stderr.trim() || r.stdout.trim()}`);
    }
    return r.stdout;
  };

  let stopped = false;
  const stop = async (sopts: { timeoutMs?: number; killContainers?: boolean } = {}): Promise<void> => {
    if (stopped) return;
    stopped = true;
    const pid = child.pid;
    if (sopts.killContainers && !exited(child)) {
      const ids = (await docker(['ps', '-q'], { timeoutMs: 10_000 })).stdout.split('\n').filter(Boolean);
      if (ids.length > 0) await docker(['kill', ...ids], { timeoutMs: 20_000 });
    }
    if (pid !== undefined && !exited(child)) {
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        // already gone
      }
      if (!(await waitForExit(child, sopts.timeoutMs ?? 30_000))) {
        try {
          process.kill(-pid, 'SIGKILL'); // dockerd and its containerd (same process group)
        } catch {
          // already gone
        }
        await waitForExit(child, 5_000);
      }
    }
    running.delete(child);
    // After a SIGKILL, containers may still run: kill each one's init (its whole pid namespace
    // goes with it), found by containerd's task state under our exec-root.
    const inits = containerInits(execRoot);
    for (const p of inits) {
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        // gone
      }
    }
    await waitUntilGone(inits, 5_000);
    // Whatever else this engine left (its containerd, container shims) names the engine's own
    // directory on its command line: those processes are ours.
    let leftovers = processesMentioning(root);
    if (leftovers.length > 0) {
      for (const p of leftovers) {
        try {
          process.kill(p, 'SIGTERM');
        } catch {
          // gone
        }
      }
      leftovers = await waitUntilGone(leftovers, 5_000);
      for (const p of leftovers) {
        try {
          process.kill(p, 'SIGKILL');
        } catch {
          // gone
        }
      }
      await waitUntilGone(leftovers, 2_000);
    }
    for (const mp of mountsUnder(root)) {
      await execFileAsync('umount', ['-l', mp]).catch(() => undefined);
    }
    if (process.env.KX_KEEP === '1') return;
    for (let i = 0; ; i++) {
      try {
        await rm(root, { recursive: true, force: true });
        return;
      } catch (e) {
        if (i >= 10) throw e;
        await sleep(200);
      }
    }
  };

  const engine: PrivateDockerd = {
    name,
    get pid() {
      return child.pid ?? -1;
    },
    socket,
    host,
    root,
    dataRoot,
    execRoot,
    logFile,
    dockerBin,
    docker,
    dockerOk,
    logTail: (lines = 30) => tail(logFile, lines),
    stop,
  };

  const startTimeout = opts.startTimeoutMs ?? 60_000;
  const deadline = Date.now() + startTimeout;
  for (;;) {
    await sleep(100);
    const failure =
      spawnFailure?.message ??
      (exited(child)
        ? `dockerd exited (code ${child.exitCode}, signal ${child.signalCode})`
        : Date.now() > deadline
          ? `dockerd did not answer within ${startTimeout} ms`
          : undefined);
    if (failure) {
      const logText = tail(logFile, 30);
      await stop({ timeoutMs: 5_000 });
      throw new Error(`private dockerd "${name}" failed to start: ${failure}\n--- ${logFile} (tail) ---\n${logText}`);
    }
    if (!existsSync(socket)) continue;
    const r = await docker(['version', '--format', '{{.Server.Version}}'], { timeoutMs: 5_000 });
    if (r.code === 0) break;
  }
  return engine;
}

/** busybox applets linked in busybox:local */
export const BUSYBOX_APPLETS = [
  'sh',
  'ash',
  'ip',
  'ping',
  'ping6',
  'ifconfig',
  'route',
  'arp',
  'cat',
  'ls',
  'sleep',
  'echo',
  'hostname',
  'ps',
  'grep',
  'true',
  'false',
  'uname',
  'env',
  'id',
  'kill',
  'mkdir',
  'rm',
  'wc',
  'head',
  'tail',
  'sed',
  'awk',
  'cut',
  'tr',
  'seq',
  'date',
  'touch',
  'ln',
  'cp',
  'mv',
  'printf',
  'test',
  'nc',
  'wget',
  'nslookup',
  'netstat',
  'traceroute',
  'udhcpc',
  'mount',
  'umount',
  'dmesg',
];

/** ELF without a PT_INTERP program header = statically linked */
async function isStaticElf(file: string): Promise<boolean> {
  const fh = await open(file, 'r');
  try {
    const head = Buffer.alloc(64);
    await fh.read(head, 0, 64, 0);
    if (head.readUInt32BE(0) !== 0x7f454c46 || head[4] !== 2) return false; // ELF64 only (amd64/arm64)
    const phoff = Number(head.readBigUInt64LE(32));
    const phentsize = head.readUInt16LE(54);
    const phnum = head.readUInt16LE(56);
    const table = Buffer.alloc(phentsize * phnum);
    await fh.read(table, 0, table.length, phoff);
    for (let i = 0; i < phnum; i++) if (table.readUInt32LE(i * phentsize) === 3) return false;
    return true;
  } finally {
    await fh.close();
  }
}

/**
 * Makes the image `busybox:local` (or `tag`) in that engine unless it is there: `docker import`
 * of a rootfs holding the static /bin/busybox (Debian's busybox-static) and applet symlinks.
 * No registry is involved. Resolves to the image id.
 */
export async function ensureBusyboxImage(
  engine: Pick<PrivateDockerd, 'docker' | 'dockerOk'>,
  tag = 'busybox:local',
): Promise<string> {
  const have = await engine.docker(['image', 'inspect', '--format', '{{.Id}}', tag]);
  if (have.code === 0) return have.stdout.trim();
  const busybox = await realpath(existsSync('/usr/bin/busybox') ? '/usr/bin/busybox' : '/bin/busybox').catch(() => {
    throw new Error('busybox not found: install busybox-static (scripts/setup.sh)');
  });
  if (!(await isStaticElf(busybox))) {
    throw new Error(`${busybox} is not statically linked: install busybox-static (scripts/setup.sh)`);
  }
  const work = await mkdtemp('/tmp/kx-img-');
  try {
    const rootfs = path.join(work, 'rootfs');
    for (const d of ['bin', 'etc', 'root', 'tmp', 'proc', 'sys', 'dev'])
      await mkdir(path.join(rootfs, d), { recursive: true });
    await chmod(path.join(rootfs, 'tmp'), 0o1777);
    await copyFile(busybox, path.join(rootfs, 'bin/busybox'));
    await chmod(path.join(rootfs, 'bin/busybox'), 0o755);
    for (const applet of BUSYBOX_APPLETS) await symlink('busybox', path.join(rootfs, 'bin', applet));
    await writeFile(path.join(rootfs, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
    await writeFile(path.join(rootfs, 'etc/group'), 'root:x:0:\n');
    const tarball = path.join(work, 'rootfs.tar');
    await execFileAsync('tar', ['--numeric-owner', '-C', rootfs, '-cf', tarball, '.']);
    const id = await engine.dockerOk(['import', '-c', 'CMD ["sh"]', '-c', 'ENV PATH=/bin', tarball, tag]);
    return id.trim();
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** reads the whole log (for assertions on what dockerd logged) */
export function readDockerdLog(engine: Pick<PrivateDockerd, 'logFile'>): Promise<string> {
  return readFile(engine.logFile, 'utf8');
}

/**
 * `ping -c 1` from a container until the address answers (the first ARP, IPv6 duplicate address detection),
 * `tries` times 500 ms apart; then a failed assertion with ping's last output and `context()` (a plugin log).
 */
export async function pingFrom(
  engine: Pick<PrivateDockerd, 'docker'>,
  from: string,
  to: string,
  opts: { tries?: number; context?: () => string } = {},
): Promise<void> {
  const args = ['exec', from, 'ping', ...(to.includes(':') ? ['-6'] : []), '-c', '1', '-W', '2', to];
  let last = '';
  for (let i = 0; i < (opts.tries ?? 5); i++) {
    const r = await engine.docker(args);
    if (r.code === 0) return;
    last = r.stdout + r.stderr;
    await new Promise<void>((resolve) => setTimeout(resolve, 500));
  }
  assert.fail(`ping ${from} → ${to} failed: ${last}${opts.context === undefined ? '' : `\n${opts.context()}`}`);
}
