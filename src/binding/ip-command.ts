/**
 * The `ip` command (iproute2) as a typed async API on the one runner (exec.ts): argument arrays, a time limit,
 * `ip -json` output checked field by field before use, failures as `CommandError` (reason `ip-command`).
 */
import { BindingError, bindingErrorReasons } from './errors.ts';
import { CommandError, type CommandRunner, commandError, execRunner } from './exec.ts';
import { IpSession } from './ip-session.ts';

/**
 * True when `err` says a device does not exist (`Cannot find device "x"`, `Device "x" does not exist.`).
 * Meaningful for commands that name a single device.
 */
export function isNoSuchDevice(err: unknown): boolean {
  return (
    err instanceof CommandError && /Cannot find device "|Device ".*" does not exist|No such device/.test(err.stderr)
  );
}

/** True when `err` is the kernel refusing to create something that already exists (EEXIST). */
export function isAlreadyExists(err: unknown): boolean {
  return err instanceof CommandError && /File exists/.test(err.stderr);
}

/** True when `err` is the kernel saying an address to delete is not there (EADDRNOTAVAIL). */
export function isAddressMissing(err: unknown): boolean {
  return err instanceof CommandError && /Cannot assign requested address|Address not found/.test(err.stderr);
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
  /** The link's alias (`ip link set ... alias`): `kuryr-ts:<owner>` on the devices the plugin made. */
  alias: string | undefined;
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

export interface IpCommandOptions {
  /** Program to run; default `ip` (found on PATH). */
  binary?: string;
  /** Per-invocation time limit; default 10 s. */
  timeoutMs?: number;
  /** How many times one command runs at most when the kernel interrupts its dump; default 5. */
  dumpAttempts?: number;
  /** Run every command in this named network namespace (`ip -n NAME ...`). */
  netns?: string;
  /**
   * Replaces the process runner (unit tests). Without one, `batch` and `deleteLink` go through one long-lived
   * `ip -batch` process (ip-session.ts) instead of a process each.
   */
  exec?: CommandRunner;
}

const DUMP_INTERRUPTED = 'Dump was interrupted';

/** An argument `ip -batch` reads back as given: no blank, quote, `#` or backslash. */
const BATCH_WORD = /^[A-Za-z0-9_.:/+,@=-]+$/;

/** `ip <object> <verb>` verbs that print (and make iproute2 cache interface names). */
const SHOW_VERBS: ReadonlySet<string> = new Set(['show', 'list', 'lst', 'ls', 'get']);

/** What an `ip -batch` run did (`IpCommand.batch`). */
export interface IpBatchResult {
  /** Standard output of the commands that ran. */
  stdout: string;
  /** The command that failed (the ones after it did not run); undefined when every one succeeded. */
  failed?: { index: number; error: CommandError };
}

/** Parsed `ip -json` output; nothing at all counts as `[]` (some subcommands print nothing when empty). */
function parseJson(out: string, argv: readonly string[]): unknown {
  if (out.trim() === '') return [];
  try {
    return JSON.parse(out);
  } catch (err) {
    throw new CommandError(bindingErrorReasons.ipCommand, argv, {
      exitCode: 0,
      stdout: out,
      stderr: '',
      detail: `printed invalid JSON (${err})`,
    });
  }
}

/** One long-lived `ip` per program, namespace and time limit, shared by every IpCommand of this process. */
const sessions = new Map<string, IpSession>();

function sessionFor(binary: string, prefix: readonly string[], timeoutMs: number): IpSession {
  const key = JSON.stringify([binary, prefix, timeoutMs]);
  let session = sessions.get(key);
  if (session === undefined) {
    session = new IpSession(binary, prefix, timeoutMs);
    sessions.set(key, session);
  }
  return session;
}

/** Typed access to iproute2's `ip`. Safe to share. */
export class IpCommand {
  readonly #binary: string;
  readonly #timeoutMs: number;
  readonly #dumpAttempts: number;
  readonly #prefix: readonly string[];
  readonly #exec: CommandRunner;
  /** The long-lived `ip` of `batch` and `deleteLink`; undefined with a given runner (tests). */
  readonly #session: IpSession | undefined;

  constructor(options: IpCommandOptions = {}) {
    this.#binary = options.binary ?? 'ip';
    this.#timeoutMs = options.timeoutMs ?? 10_000;
    this.#dumpAttempts = Math.max(1, options.dumpAttempts ?? 5);
    this.#prefix = options.netns === undefined ? [] : ['-n', options.netns];
    this.#exec = options.exec ?? execRunner;
    this.#session = options.exec === undefined ? sessionFor(this.#binary, this.#prefix, this.#timeoutMs) : undefined;
  }

  /**
   * Run `ip <args>` and return its standard output. Rejects with `CommandError` on a non-zero exit,
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
        const failure = commandError(bindingErrorReasons.ipCommand, argv, caught, this.#timeoutMs);
        if (failure.stderr.includes(DUMP_INTERRUPTED) && attempt < this.#dumpAttempts) continue;
        throw failure;
      }
      // `ip` may report an interrupted (possibly inconsistent) dump and still exit 0: never trust that output.
      if (stderr.includes(DUMP_INTERRUPTED)) {
        if (attempt < this.#dumpAttempts) continue;
        throw new CommandError(bindingErrorReasons.ipCommand, argv, {
          exitCode: 0,
          stdout,
          stderr,
          detail: `was interrupted ${attempt} times`,
        });
      }
      return stdout;
    }
  }

  /** Run `ip -json <args>` and return the parsed JSON (not yet checked: see the typed helpers). */
  async runJson(args: readonly string[]): Promise<unknown> {
    return parseJson(await this.run(['-json', ...args]), [this.#binary, ...this.#prefix, '-json', ...args]);
  }

  /**
   * Run several commands in order, stopping at the first that fails, without starting a process each: commands
   * that print nothing go to the long-lived `ip` of this program and namespace (ip-session.ts), others (and all
   * with a given runner) to ONE `ip -batch -` process (the commands on its standard input), which stops at the
   * first that fails too. Resolves with what was printed (with `json`, one `-json` array per
   * line of each `show` command) and, when a command failed, which one (index into `commands`; the ones before
   * it were done, the ones after it not) with the `CommandError` it would have given run alone: its own command
   * line, `ip`'s exit status and message. Rejects when `ip` could not be run or was killed, and when one
   * `ip -batch -` process ends without naming a line: an argument it refuses (`master <missing device>`, a bad
   * address) ends it at once (exit status 255), and which commands ran is unknown (the long-lived `ip` runs one
   * command at a time, so there it is that command's failure). Show commands are not retried when the kernel
   * interrupts a dump.
   */
  async batch(
    commands: readonly (readonly string[])[],
    options: { json?: boolean; details?: boolean } = {},
  ): Promise<IpBatchResult> {
    const globals = [...this.#prefix, ...(options.json ? ['-json'] : []), ...(options.details ? ['-details'] : [])];
    for (const command of commands) {
      // `ip -batch` splits its lines on blanks and reads quotes and `#`: every argument must be a plain word.
      const bad = command.find((arg) => !BATCH_WORD.test(arg));
      if (bad !== undefined || command.length === 0) {
        throw new BindingError(
          bindingErrorReasons.invalidInput,
          `ip ${command.join(' ')}: ${JSON.stringify(bad ?? '')} cannot be passed to ip -batch`,
        );
      }
    }
    // The long-lived `ip` takes commands that print nothing (its output is not read; a show fills its name cache).
    const quiet = !options.json && !options.details && commands.every((c) => !SHOW_VERBS.has(c[1] ?? ''));
    if (this.#session !== undefined && quiet) return this.#sessionBatch(commands);
    const args = [...globals, '-batch', '-'];
    const input = `${commands.map((c) => c.join(' ')).join('\n')}\n`;
    try {
      const { stdout } = await this.#exec(this.#binary, args, { timeoutMs: this.#timeoutMs, input });
      return { stdout };
    } catch (caught) {
      const failure = commandError(bindingErrorReasons.ipCommand, [this.#binary, ...args], caught, this.#timeoutMs);
      // `ip -batch` ends its message with `Command failed -:N` (N: the line, from 1).
      const line = /^Command failed -:(\d+)$/m.exec(failure.stderr);
      const index = line === null ? -1 : Number(line[1]) - 1;
      const command = commands[index];
      if (failure.exitCode === null || command === undefined) throw failure;
      const stderr = failure.stderr.replace(/^Command failed -:\d+\n?/m, '');
      const error = new CommandError(bindingErrorReasons.ipCommand, [this.#binary, ...globals, ...command], {
        exitCode: failure.exitCode,
        stdout: failure.stdout,
        stderr,
      });
      return { stdout: failure.stdout, failed: { index, error } };
    }
  }

  /** `batch` on the long-lived `ip`: the same results, without starting a process. */
  async #sessionBatch(commands: readonly (readonly string[])[]): Promise<IpBatchResult> {
    const session = this.#session as IpSession;
    for (const [index, command] of commands.entries()) {
      const argv = [this.#binary, ...this.#prefix, ...command];
      let result: Awaited<ReturnType<IpSession['run']>>;
      try {
        result = await session.run(command);
      } catch (caught) {
        throw commandError(bindingErrorReasons.ipCommand, argv, caught, this.#timeoutMs);
      }
      if (!result.ok) {
        const error = new CommandError(bindingErrorReasons.ipCommand, argv, {
          exitCode: result.exitCode,
          stderr: result.stderr,
        });
        return { stdout: '', failed: { index, error } };
      }
    }
    return { stdout: '' };
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

  /** Addresses of the link `name`; rejects with `CommandError` (`isNoSuchDevice`) when it is missing. */
  async getAddresses(name: string): Promise<IpAddress[]> {
    return parseAddresses(await this.runJson(['addr', 'show', 'dev', name]), name);
  }

  /** Delete the link `name`; resolves false when it did not exist. */
  async deleteLink(name: string): Promise<boolean> {
    try {
      if (this.#session === undefined) {
        await this.run(['link', 'del', 'dev', name]);
      } else {
        const { failed } = await this.#sessionBatch([['link', 'del', 'dev', name]]);
        if (failed !== undefined) throw failed.error;
      }
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

function shapeError(what: string, expected: string): CommandError {
  return new CommandError(bindingErrorReasons.ipCommand, ['ip', '-json', what], {
    exitCode: 0,
    stderr: '',
    detail: `printed JSON that is not ${expected}`,
  });
}

/** Check and convert `ip -json addr show dev <name>` output: the link's IPv4 and IPv6 addresses. */
function parseAddresses(links: unknown, name: string): IpAddress[] {
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
      alias: typeof entry.ifalias === 'string' ? entry.ifalias : undefined,
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
