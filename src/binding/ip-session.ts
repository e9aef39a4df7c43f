/**
 * One long-lived `ip -force -batch -` process that runs `ip` commands sent on its standard input, so that plugging
 * and unplugging a port start no process at all (a process costs the plugin 1–3 ms of CPU: Node forks itself).
 *
 * Commands go one at a time, each followed by a sentinel (`link show dev kxs.<n>`, a device that does not exist):
 * `ip` reports errors on its unbuffered standard error in order, so whatever it printed before the sentinel's
 * "does not exist" is the command's own error, and the sentinel's report says the command is done. Only commands
 * that print nothing on success belong here (`link add/set/del`, `addr add/del/replace`): standard output is not
 * read, and a `show` would fill iproute2's name cache, which a long-lived process must not trust. A command that
 * makes `ip` exit (an argument it refuses) fails with what `ip` printed; the next command starts a new process.
 * The process is not waited for: it ends when the plugin does (its standard input closes).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import type { ExecFailure } from './exec.ts';
import { toolEnv } from './tool-env.ts';

/** What one command did: nothing to report, or `ip`'s error text (without its `Command failed` line). */
export type SessionResult = { ok: true } | { ok: false; stderr: string; exitCode: number };

interface Pending {
  token: string;
  resolve: (result: SessionResult) => void;
  reject: (failure: ExecFailure) => void;
  timer: NodeJS.Timeout;
}

/** Commands of one `ip` binary and namespace prefix, one at a time, in one process. */
export class IpSession {
  readonly #binary: string;
  readonly #prefix: readonly string[];
  readonly #timeoutMs: number;
  #child: ChildProcess | undefined;
  #stderr = '';
  #pending: Pending | undefined;
  #queue: Promise<unknown> = Promise.resolve();
  #seq = 0;

  constructor(binary: string, prefix: readonly string[], timeoutMs: number) {
    this.#binary = binary;
    this.#prefix = prefix;
    this.#timeoutMs = timeoutMs;
  }

  /** Run one command (its words already checked for `ip -batch`); rejects like a runner when `ip` cannot run. */
  run(command: readonly string[]): Promise<SessionResult> {
    const next = this.#queue.then(() => this.#send(command));
    this.#queue = next.catch(() => {});
    return next;
  }

  #send(command: readonly string[]): Promise<SessionResult> {
    const child = this.#child ?? this.#start();
    const token = `kxs.${(this.#seq++).toString(36)}`;
    return new Promise<SessionResult>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending = undefined;
        this.#stop(child);
        reject({ killed: true, signal: 'SIGKILL', stderr: this.#takeStderr() });
      }, this.#timeoutMs);
      this.#pending = { token, resolve, reject, timer };
      child.stdin?.write(`${command.join(' ')}\nlink show dev ${token}\n`);
    });
  }

  #start(): ChildProcess {
    const child = spawn(this.#binary, [...this.#prefix, '-force', '-batch', '-'], {
      stdio: ['pipe', 'ignore', 'pipe'],
      env: toolEnv(),
    });
    this.#child = child;
    this.#stderr = '';
    // Not waited for: the plugin may exit at any time, and the process goes with its standard input.
    child.unref();
    (child.stdin as unknown as { unref?: () => void } | null)?.unref?.();
    (child.stderr as unknown as { unref?: () => void } | null)?.unref?.();
    child.stdin?.on('error', () => {}); // a process that died closes its standard input: 'close' tells
    child.stderr?.setEncoding('utf8').on('data', (d: string) => {
      this.#stderr += d;
      this.#settle();
    });
    child.on('error', (err: NodeJS.ErrnoException) => {
      this.#ended(child, { code: err.code ?? 'error', message: err.message, stderr: this.#takeStderr() });
    });
    child.on('close', (code, signal) => {
      // It exits on an argument it refuses (status 255) with the command's error in its standard error.
      this.#ended(
        child,
        code === null ? { signal: signal ?? 'SIGKILL', stderr: this.#takeStderr() } : { code, stderr: this.#stderr },
      );
    });
    return child;
  }

  /** The sentinel's report arrived: the command before it is done, its errors are what came before. */
  #settle(): void {
    const pending = this.#pending;
    if (pending === undefined) return;
    const mark = this.#stderr.indexOf(`"${pending.token}"`);
    if (mark < 0) return;
    const failedLine = this.#stderr.indexOf('Command failed', mark);
    const end = failedLine < 0 ? -1 : this.#stderr.indexOf('\n', failedLine);
    if (end < 0) return;
    const before = this.#stderr.slice(0, this.#stderr.lastIndexOf('\n', mark) + 1);
    this.#stderr = this.#stderr.slice(end + 1);
    this.#pending = undefined;
    clearTimeout(pending.timer);
    // A warning of a command that worked has no `Command failed` line.
    if (!/^Command failed -:\d+$/m.test(before)) pending.resolve({ ok: true });
    else pending.resolve({ ok: false, stderr: before.replace(/^Command failed -:\d+\n?/gm, ''), exitCode: 1 });
  }

  #ended(child: ChildProcess, failure: ExecFailure): void {
    if (this.#child !== child) return;
    this.#child = undefined;
    const pending = this.#pending;
    if (pending === undefined) return;
    this.#pending = undefined;
    clearTimeout(pending.timer);
    const code = failure.code;
    if (typeof code === 'number') {
      pending.resolve({
        ok: false,
        stderr: (failure.stderr ?? '').replace(/^Command failed -:\d+\n?/gm, ''),
        exitCode: code,
      });
    } else {
      pending.reject(failure);
    }
    this.#stderr = '';
  }

  #stop(child: ChildProcess): void {
    if (this.#child === child) this.#child = undefined;
    child.kill('SIGKILL');
  }

  #takeStderr(): string {
    const text = this.#stderr;
    this.#stderr = '';
    return text;
  }
}
