/**
 * One long-lived `nft -j -i` (interactive) process that runs nftables commands sent on its standard input, so that
 * creating and removing a network starts no `nft` process (a process costs the plugin 1–3 ms of CPU, and more of
 * waiting on a busy host; isolation.ts reads its table and writes it for every network).
 *
 * One line is one command, or one transaction of several commands joined by `;` (nft runs each line it reads as one
 * batch: all or nothing, as `nft -f`). After each line comes a sentinel, `list table inet kxs_<n>` (a table that
 * does not exist): nft reports errors on standard error in order, so what it printed there before the sentinel's
 * "Error: No such file or directory" is the line's own error, and the sentinel's report says the line is done. A
 * `list` prints its JSON on one line of standard output, flushed before the next line is read.
 *
 * Its line editor keeps a history in memory and writes it to `$HOME/.nft.history` on exit: HOME is `/dev/null`, so
 * nothing is written anywhere, and the process is replaced after `maxLines` lines so the history stays small. The
 * process is not waited for: it ends when the plugin does (its standard input closes).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import type { ExecFailure } from './exec.ts';
import { toolEnv } from './tool-env.ts';

interface Pending {
  token: string;
  /** Expects one line of standard output (a `list` that succeeds). */
  list: boolean;
  resolve: (stdout: string) => void;
  reject: (failure: ExecFailure) => void;
  timer: NodeJS.Timeout;
  /** The line's own error text, once the sentinel's report came. */
  stderr?: string;
}

/** A line nft reads as it was written: no line break (it would end the line), no NUL. */
const ONE_LINE = /^[^\n\r\0]*$/;

/** Lines of one `nft` command line (program and its leading arguments), one at a time, in one process. */
export class NftSession {
  readonly #argv: readonly string[];
  readonly #timeoutMs: number;
  readonly #maxLines: number;
  #child: ChildProcess | undefined;
  #stdout = '';
  #stderr = '';
  #pending: Pending | undefined;
  #queue: Promise<unknown> = Promise.resolve();
  #seq = 0;
  #lines = 0;
  #starts = 0;

  /** `argv`: the program and the arguments before `-j -i`, e.g. `['nft']`, `['ip', 'netns', 'exec', 'x', 'nft']`. */
  constructor(argv: readonly string[], timeoutMs: number, maxLines = 500) {
    this.#argv = argv;
    this.#timeoutMs = timeoutMs;
    this.#maxLines = maxLines;
  }

  /** How many processes this session has started (tests). */
  get starts(): number {
    return this.#starts;
  }

  /**
   * Run `commands` as one transaction (resolves '' when done), or one `list` command (resolves with its JSON).
   * Rejects like a runner: `{ code: 1, stderr }` for nft's error, `{ killed: true }` at the time limit, the start
   * error when nft cannot run.
   */
  run(commands: readonly string[], options: { list?: boolean } = {}): Promise<string> {
    if (commands.length === 0 || !commands.every((c) => ONE_LINE.test(c))) {
      return Promise.reject({ code: 'EINVAL', message: 'nft session: empty command or a line break in one' });
    }
    const next = this.#queue.then(() => this.#send(commands.join('; '), options.list === true));
    this.#queue = next.catch(() => {});
    return next;
  }

  #send(line: string, list: boolean): Promise<string> {
    if (this.#child !== undefined && this.#lines >= this.#maxLines) this.#stop(this.#child);
    const child = this.#child ?? this.#start();
    this.#lines++;
    const token = `kxs_${(this.#seq++).toString(36)}`;
    return new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending = undefined;
        this.#stop(child);
        reject({ killed: true, signal: 'SIGKILL', stderr: this.#stderr, stdout: this.#stdout });
      }, this.#timeoutMs);
      this.#pending = { token, list, resolve, reject, timer };
      child.stdin?.write(`${line}\nlist table inet ${token}\n`);
    });
  }

  #start(): ChildProcess {
    const [file = 'nft', ...args] = this.#argv;
    // HOME: nft's line editor writes its history there on exit; /dev/null is no directory, so it writes nothing.
    const child = spawn(file, [...args, '-j', '-i'], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...toolEnv(), HOME: '/dev/null' },
    });
    this.#child = child;
    this.#starts++;
    this.#lines = 0;
    this.#stdout = '';
    this.#stderr = '';
    // Not waited for: the plugin may exit at any time, and the process goes with its standard input.
    child.unref();
    for (const stream of [child.stdin, child.stdout, child.stderr]) {
      (stream as unknown as { unref?: () => void } | null)?.unref?.();
    }
    child.stdin?.on('error', () => {}); // a process that died closes its standard input: 'close' tells
    child.stdout?.setEncoding('utf8').on('data', (d: string) => {
      if (this.#child !== child) return;
      this.#stdout += d;
      this.#settle();
    });
    child.stderr?.setEncoding('utf8').on('data', (d: string) => {
      if (this.#child !== child) return;
      this.#stderr += d;
      this.#settle();
    });
    child.on('error', (err: NodeJS.ErrnoException) => {
      this.#ended(child, { code: err.code ?? 'error', message: err.message, stderr: this.#stderr });
    });
    child.on('close', (code, signal) => {
      this.#ended(
        child,
        code === null ? { signal: signal ?? 'SIGKILL', stderr: this.#stderr } : { code, stderr: this.#stderr },
      );
    });
    return child;
  }

  /** Settles the line in flight once the sentinel's report (and a `list`'s output) has come. */
  #settle(): void {
    const pending = this.#pending;
    if (pending === undefined) return;
    if (pending.stderr === undefined) {
      const at = this.#stderr.indexOf(`inet ${pending.token}\n`);
      if (at < 0) return;
      // The sentinel's report: `Error: …` above the echoed line, carets below it.
      const errorAt = this.#stderr.lastIndexOf('Error:', at);
      const caretsEnd = this.#stderr.indexOf('\n', at + pending.token.length + 6);
      if (errorAt < 0 || caretsEnd < 0) return;
      pending.stderr = this.#stderr.slice(0, errorAt);
      this.#stderr = this.#stderr.slice(caretsEnd + 1);
    }
    const failed = /^Error:/m.test(pending.stderr);
    let stdout = '';
    if (pending.list && !failed) {
      const end = this.#stdout.indexOf('\n');
      if (end < 0) return; // its output is on its way
      stdout = this.#stdout.slice(0, end + 1);
      this.#stdout = this.#stdout.slice(end + 1);
    }
    this.#pending = undefined;
    clearTimeout(pending.timer);
    if (failed) pending.reject({ code: 1, stderr: pending.stderr, stdout: '' });
    else pending.resolve(stdout);
  }

  #ended(child: ChildProcess, failure: ExecFailure): void {
    if (this.#child !== child) return;
    this.#child = undefined;
    const pending = this.#pending;
    if (pending === undefined) return;
    this.#pending = undefined;
    clearTimeout(pending.timer);
    pending.reject(failure);
  }

  #stop(child: ChildProcess): void {
    if (this.#child === child) this.#child = undefined;
    child.stdin?.end();
    child.kill('SIGKILL');
  }
}

/** One long-lived `nft` per command line and time limit, shared by every user of this process. */
const sessions = new Map<string, NftSession>();

export function nftSessionFor(argv: readonly string[], timeoutMs: number): NftSession {
  const key = JSON.stringify([argv, timeoutMs]);
  let session = sessions.get(key);
  if (session === undefined) {
    session = new NftSession(argv, timeoutMs);
    sessions.set(key, session);
  }
  return session;
}
