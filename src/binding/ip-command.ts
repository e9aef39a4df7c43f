/**
 * The `ip` command (iproute2) as a typed async API: every call is an argument array run with `execFile`
 * (never a shell), bounded by a timeout, and `ip -json` output is checked field by field before use.
 */
import { execFile } from 'node:child_process';
import { BindingError, bindingErrorReasons } from './errors.ts';
import { toolEnv } from './tool-env.ts';

/** An `ip` invocation that failed: its full command line, exit status and standard error. */
export class IpCommandError extends BindingError {
  override readonly name = 'IpCommandError';
  /** The command line as run: `['ip', 'link', 'add', ...]`. */
  readonly argv: readonly string[];
  /** Exit status, or null when the process was killed (timeout) or could not be started. */
  readonly exitCode: number | null;
  readonly stderr: string;
  /** True when the command was killed because it ran past the timeout. */
  readonly timedOut: boolean;

  constructor(
    argv: readonly string[],
    exitCode: number | null,
    stderr: string,
    options: { detail?: string; timedOut?: boolean } = {},
  ) {
    const what = options.detail ?? (exitCode === null ? 'failed' : `exited with status ${exitCode}`);
    const text = stderr.trim();
    super(bindingErrorReasons.ipCommand, `\`${argv.join(' ')}\` ${what}${text ? `: ${text}` : ''}`);
    this.argv = argv;
    this.exitCode = exitCode;
    this.stderr = stderr;
    this.timedOut = options.timedOut ?? false;
  }
}

/**
 * True when `err` says a device does not exist (`Cannot find device "x"`, `Device "x" does not exist.`).
 * Meaningful for commands that name a single device.
 */
export function isNoSuchDevice(err: unknown): boolean {
  return (
    err instanceof IpCommandError && /Cannot find device "|Device ".*" does not exist|No such device/.test(err.stderr)
  );
}

/** True when `err` is the kernel refusing to create something that already exists (EEXIST). */
export function isAlreadyExists(err: unknown): boolean {
  return err instanceof IpCommandError && /File exists/.test(err.stderr);
}

/** True when `err` is the kernel saying an address to delete is not there (EADDRNOTAVAIL). */
export function isAddressMissing(err: unknown): boolean {
  return err instanceof IpCommandError && /Cannot assign requested address|Address not found/.test(err.stderr);
}

/** One link as `ip -json -details link show` reports it (only the fields kuryr-ts reads). */
export interface IpLink {
  ifindex: number;
  ifname: string;
  flags: string[];
  mtu: number;
  operstate: string;
  /** MAC address (lower case) for Ethernet-like links. */
  address: string | undefined;
  /** Name of the bridge (or other master) the link is enslaved to. */
  master: string | undefined;
  /** For a veth: the peer's name when the peer is in the same namespace. */
  peer: string | undefined;
  /** For a veth whose peer is in another namespace: that namespace's id as seen from here. */
  peerNetnsId: number | undefined;
  /** `linkinfo.info_kind`: `veth`, `bridge`, ... (undefined for plain devices, or without `-details`). */
  kind: string | undefined;
  /** `linkinfo.info_data`: the kind's own attributes (`forward_delay`, `stp_state`, ...). */
  kindData: Record<string, unknown>;
}

/** One address of a link as `ip -json addr show` reports it. */
export interface IpAddress {
  family: 'inet' | 'inet6';
  /** The address itself, as `ip` prints it (IPv6 compressed, lower case). */
  local: string;
  prefixlen: number;
  /** `global`, `link`, `host`, ... */
  scope: string;
  tentative: boolean;
  dadfailed: boolean;
}

/** Runs one program with arguments; the `ip` binary in production, a fake in unit tests. */
export type ExecRunner = (
  file: string,
  args: readonly string[],
  options: { timeoutMs: number },
) => Promise<{ stdout: string; stderr: string }>;

/** The failure shape an `ExecRunner` rejects with (what `execFile` rejects with). */
export interface ExecFailure {
  code?: number | string | null;
  killed?: boolean;
  signal?: string | null;
  stdout?: string;
  stderr?: string;
  message?: string;
}

export interface IpCommandOptions {
  /** Program to run; default `ip` (found on PATH). */
  binary?: string;
  /** Per-invocation time limit; default 10 s. */
  timeoutMs?: number;
  /** How many times one command runs at most when the kernel interrupts its dump; default 5. */
  dumpAttempts?: number;
  /** Run every command in this named network namespace (`ip -n NAME ...`). */
  netns?: string;
  /** Replaces `execFile` (unit tests). */
  exec?: ExecRunner;
}

const DUMP_INTERRUPTED = 'Dump was interrupted';

const defaultExec: ExecRunner = (file, args, { timeoutMs }) =>
  new Promise((resolve, reject) => {
    execFile(
      file,
      [...args],
      {
        timeout: timeoutMs,
        killSignal: 'SIGKILL',
        maxBuffer: 64 * 1024 * 1024,
        encoding: 'utf8',
        env: toolEnv(),
      },
      (error, stdout, stderr) => {
        if (error) reject(Object.assign(error, { stdout, stderr }));
        else resolve({ stdout, stderr });
      },
    );
  });

/** Typed access to iproute2's `ip`. Stateless; safe to share. */
export class IpCommand {
  readonly #binary: string;
  readonly #timeoutMs: number;
  readonly #dumpAttempts: number;
  readonly #prefix: readonly string[];
  readonly #exec: ExecRunner;

  constructor(options: IpCommandOptions = {}) {
    this.#binary = options.binary ?? 'ip';
    this.#timeoutMs = options.timeoutMs ?? 10_000;
    this.#dumpAttempts = Math.max(1, options.dumpAttempts ?? 5);
    this.#prefix = options.netns === undefined ? [] : ['-n', options.netns];
    this.#exec = options.exec ?? defaultExec;
  }

  /**
   * Run `ip <args>` and return its standard output. Rejects with `IpCommandError` on a non-zero exit,
   * a timeout or a dump the kernel kept interrupting (an interrupted dump is retried first).
   */
  async run(args: readonly string[]): Promise<string> {
    const fullArgs = [...this.#prefix, ...args];
    const argv = [this.#binary, ...fullArgs];
    for (let attempt = 1; ; attempt++) {
      let stdout: string;
      let stderr: string;
      try {
        ({ stdout, stderr } = await this.#exec(this.#binary, fullArgs, { timeoutMs: this.#timeoutMs }));
      } catch (caught) {
        const failure = (caught ?? {}) as ExecFailure;
        const errText = failure.stderr ?? '';
        if (errText.includes(DUMP_INTERRUPTED) && attempt < this.#dumpAttempts) continue;
        if (failure.code === 'ERR_CHILD_PROCESS_STDIO_MAXBUFFER') {
          throw new IpCommandError(argv, null, errText, { detail: 'printed more than the output limit' });
        }
        if (failure.killed) {
          const detail = `timed out after ${this.#timeoutMs} ms`;
          throw new IpCommandError(argv, null, errText, { detail, timedOut: true });
        }
        if (failure.signal) {
          throw new IpCommandError(argv, null, errText, { detail: `was killed by ${failure.signal}` });
        }
        if (typeof failure.code === 'number') throw new IpCommandError(argv, failure.code, errText);
        // Not started at all (ENOENT for a missing binary, ...): keep the system's explanation.
        const reason = errText || (failure.message ?? String(caught));
        throw new IpCommandError(argv, null, reason, { detail: 'could not be run' });
      }
      // `ip` may report an interrupted (possibly inconsistent) dump and still exit 0: never trust that output.
      if (stderr.includes(DUMP_INTERRUPTED)) {
        if (attempt < this.#dumpAttempts) continue;
        throw new IpCommandError(argv, 0, stderr, { detail: `was interrupted ${attempt} times` });
      }
      return stdout;
    }
  }

  /** Run `ip -json <args>` and return the parsed JSON (not yet checked: see the typed helpers). */
  async runJson(args: readonly string[]): Promise<unknown> {
    const out = await this.run(['-json', ...args]);
    // Some `ip` subcommands print nothing at all instead of `[]` when there is nothing to show.
    if (out.trim() === '') return [];
    try {
      return JSON.parse(out);
    } catch (err) {
      const argv = [this.#binary, ...this.#prefix, '-json', ...args];
      throw new IpCommandError(argv, 0, '', { detail: `printed invalid JSON (${err})` });
    }
  }

  /** The link called `name`, with details; undefined when there is none. */
  async getLink(name: string): Promise<IpLink | undefined> {
    try {
      const links = parseLinks(await this.runJson(['-details', 'link', 'show', 'dev', name]));
      return links.find((l) => l.ifname === name);
    } catch (err) {
      if (isNoSuchDevice(err)) return undefined;
      throw err;
    }
  }

  /** Links enslaved to `master` (a bridge's ports). */
  async listPorts(master: string): Promise<IpLink[]> {
    return parseLinks(await this.runJson(['-details', 'link', 'show', 'master', master]));
  }

  /** Addresses of the link `name`; rejects with `IpCommandError` (`isNoSuchDevice`) when it is missing. */
  async getAddresses(name: string): Promise<IpAddress[]> {
    const links = await this.runJson(['addr', 'show', 'dev', name]);
    if (!Array.isArray(links)) throw shapeError('addr show', 'an array');
    const out: IpAddress[] = [];
    for (const link of links) {
      if (!isRecord(link) || link.ifname !== name) continue;
      const infos = link.addr_info;
      if (!Array.isArray(infos)) continue;
      for (const info of infos) {
        if (!isRecord(info)) continue;
        const { family, local, prefixlen, scope } = info;
        if ((family !== 'inet' && family !== 'inet6') || typeof local !== 'string' || typeof prefixlen !== 'number') {
          continue; // other families (e.g. MPLS) and partial entries are not ours to manage
        }
        out.push({
          family,
          local,
          prefixlen,
          scope: typeof scope === 'string' ? scope : 'global',
          tentative: info.tentative === true,
          dadfailed: info.dadfailed === true,
        });
      }
    }
    return out;
  }

  /** Delete the link `name`; resolves false when it did not exist. */
  async deleteLink(name: string): Promise<boolean> {
    try {
      await this.run(['link', 'del', 'dev', name]);
      return true;
    } catch (err) {
      if (isNoSuchDevice(err)) return false;
      throw err;
    }
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function shapeError(what: string, expected: string): IpCommandError {
  return new IpCommandError(['ip', '-json', what], 0, '', { detail: `printed JSON that is not ${expected}` });
}

/** Check and convert `ip -json [-details] link show` output. Entries without the basic fields are an error. */
export function parseLinks(json: unknown): IpLink[] {
  if (!Array.isArray(json)) throw shapeError('link show', 'an array');
  return json.map((entry): IpLink => {
    if (
      !isRecord(entry) ||
      typeof entry.ifindex !== 'number' ||
      typeof entry.ifname !== 'string' ||
      typeof entry.mtu !== 'number'
    ) {
      throw shapeError('link show', 'a list of links with ifindex, ifname and mtu');
    }
    const info = isRecord(entry.linkinfo) ? entry.linkinfo : {};
    return {
      ifindex: entry.ifindex,
      ifname: entry.ifname,
      flags: Array.isArray(entry.flags) ? entry.flags.filter((f): f is string => typeof f === 'string') : [],
      mtu: entry.mtu,
      operstate: typeof entry.operstate === 'string' ? entry.operstate : 'UNKNOWN',
      address: typeof entry.address === 'string' ? entry.address.toLowerCase() : undefined,
      master: typeof entry.master === 'string' ? entry.master : undefined,
      peer: typeof entry.link === 'string' ? entry.link : undefined,
      peerNetnsId: typeof entry.link_netnsid === 'number' ? entry.link_netnsid : undefined,
      kind: typeof info.info_kind === 'string' ? info.info_kind : undefined,
      kindData: isRecord(info.info_data) ? info.info_data : {},
    };
  });
}

/** Return `mtu` if it is a usable link MTU (an integer in 68..65535); throw `BindingError` otherwise. */
export function validateMtu(mtu: number): number {
  if (!Number.isInteger(mtu) || mtu < 68 || mtu > 65535) {
    throw new BindingError(
      bindingErrorReasons.invalidInput,
      `invalid MTU ${JSON.stringify(mtu)}: must be an integer in 68..65535`,
    );
  }
  return mtu;
}
