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
 * nothing is written anywhere, and the process is replaced after `maxLines` lines so the history stays small.
 */
import { LineSession, type SessionLine } from './line-session.ts';
import { toolEnv } from './tool-env.ts';

interface NftLine extends SessionLine<string> {
  /** Expects one line of standard output (a `list` that succeeds). */
  list: boolean;
  /** The line's own error text, once the sentinel's report came. */
  stderr?: string;
}

/** A line nft reads as it was written: no line break (it would end the line), no NUL. */
const ONE_LINE = /^[^\n\r\0]*$/;

/** Lines of one `nft` command line (program and its leading arguments), one at a time, in one process. */
export class NftSession extends LineSession<string, NftLine> {
  /** `argv`: the program and the arguments before `-j -i`, e.g. `['nft']`, `['ip', 'netns', 'exec', 'x', 'nft']`. */
  constructor(argv: readonly string[], timeoutMs: number, maxLines = 500) {
    const [file = 'nft', ...args] = argv;
    super({
      argv: [file, ...args, '-j', '-i'],
      // HOME: nft's line editor writes its history there on exit; /dev/null is no directory, so it writes nothing.
      env: { ...toolEnv(), HOME: '/dev/null' },
      readStdout: true,
      timeoutMs,
      maxLines,
      tokenPrefix: 'kxs_',
    });
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
    const line = commands.join('; ');
    return this.send((token) => `${line}\nlist table inet ${token}\n`, { list: options.list === true });
  }

  /** Settles the line in flight once the sentinel's report (and a `list`'s output) has come. */
  protected settle(): void {
    const pending = this.pending;
    if (pending === undefined) return;
    if (pending.stderr === undefined) {
      const at = this.stderr.indexOf(`inet ${pending.token}\n`);
      if (at < 0) return;
      // The sentinel's report: `Error: …` above the echoed line, carets below it.
      const errorAt = this.stderr.lastIndexOf('Error:', at);
      const caretsEnd = this.stderr.indexOf('\n', at + pending.token.length + 6);
      if (errorAt < 0 || caretsEnd < 0) return;
      pending.stderr = this.stderr.slice(0, errorAt);
      this.stderr = this.stderr.slice(caretsEnd + 1);
    }
    const failed = /^Error:/m.test(pending.stderr);
    let stdout = '';
    if (pending.list && !failed) {
      const end = this.stdout.indexOf('\n');
      if (end < 0) return; // its output is on its way
      stdout = this.stdout.slice(0, end + 1);
      this.stdout = this.stdout.slice(end + 1);
    }
    this.take();
    if (failed) pending.reject({ code: 1, stderr: pending.stderr, stdout: '' });
    else pending.resolve(stdout);
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
