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
 */
import type { ExecFailure } from './exec.ts';
import { LineSession, type SessionLine } from './line-session.ts';
import { toolEnv } from './tool-env.ts';

/** What one command did: nothing to report, or `ip`'s error text (without its `Command failed` line). */
export type SessionResult = { ok: true } | { ok: false; stderr: string; exitCode: number };

const COMMAND_FAILED = /^Command failed -:\d+\n?/gm;

/** Commands of one `ip` binary and namespace prefix, one at a time, in one process (line-session.ts). */
export class IpSession extends LineSession<SessionResult> {
  constructor(binary: string, prefix: readonly string[], timeoutMs: number) {
    super({
      argv: [binary, ...prefix, '-force', '-batch', '-'],
      env: toolEnv(),
      readStdout: false,
      timeoutMs,
      tokenPrefix: 'kxs.',
    });
  }

  /** Run one command (its words already checked for `ip -batch`); rejects like a runner when `ip` cannot run. */
  run(command: readonly string[]): Promise<SessionResult> {
    return this.send((token) => `${command.join(' ')}\nlink show dev ${token}\n`, {});
  }

  /** The sentinel's report arrived: the command before it is done, its errors are what came before. */
  protected settle(): void {
    const pending = this.pending;
    if (pending === undefined) return;
    const mark = this.stderr.indexOf(`"${pending.token}"`);
    if (mark < 0) return;
    const failedLine = this.stderr.indexOf('Command failed', mark);
    const end = failedLine < 0 ? -1 : this.stderr.indexOf('\n', failedLine);
    if (end < 0) return;
    const before = this.stderr.slice(0, this.stderr.lastIndexOf('\n', mark) + 1);
    this.stderr = this.stderr.slice(end + 1);
    this.take();
    // A warning of a command that worked has no `Command failed` line.
    if (!/^Command failed -:\d+$/m.test(before)) pending.resolve({ ok: true });
    else pending.resolve({ ok: false, stderr: before.replace(COMMAND_FAILED, ''), exitCode: 1 });
  }

  /** It exits on an argument it refuses (status 255), with the command's error in its standard error. */
  protected override ended(line: SessionLine<SessionResult>, failure: ExecFailure): void {
    const code = failure.code;
    if (typeof code === 'number') {
      line.resolve({ ok: false, stderr: (failure.stderr ?? '').replace(COMMAND_FAILED, ''), exitCode: code });
    } else {
      line.reject(failure);
    }
  }
}
