/**
 * The mechanism under the long-lived `ip -batch` and `nft -i` sessions (ip-session.ts, nft-session.ts): one child
 * process fed one line at a time on its standard input, lines queued one after another, each with a time limit and
 * a sentinel the tool answers in order. What the tool printed is buffered; the subclass reads the buffers
 * (`settle`) and says when the line in flight is done (`take`). A process that dies or hangs is dropped (a hung one
 * killed), and the next line starts a new one; so does a process that has run `maxLines` lines.
 *
 * The process is not waited for: it ends when the plugin does (its standard input closes).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import type { ExecFailure } from './exec.ts';

/** The line in flight: its sentinel token, its time limit, and how to settle it. */
export interface SessionLine<R> {
  token: string;
  resolve: (result: R) => void;
  reject: (failure: ExecFailure) => void;
  timer: NodeJS.Timeout;
}

export interface LineSessionSpec {
  /** The program and all its arguments. */
  argv: readonly string[];
  env: NodeJS.ProcessEnv;
  /** Whether the tool's standard output is read (`settle` finds it in `stdout`). */
  readStdout: boolean;
  timeoutMs: number;
  /** Lines one process runs before it is replaced (unbounded when absent). */
  maxLines?: number;
  /** Sentinel tokens: `<prefix><n>`. */
  tokenPrefix: string;
}

export abstract class LineSession<R, L extends SessionLine<R> = SessionLine<R>> {
  protected stdout = '';
  protected stderr = '';
  /** The line in flight (one at a time). */
  protected pending: L | undefined;
  readonly #spec: LineSessionSpec;
  #child: ChildProcess | undefined;
  #queue: Promise<unknown> = Promise.resolve();
  #seq = 0;
  #lines = 0;
  #starts = 0;

  constructor(spec: LineSessionSpec) {
    this.#spec = spec;
  }

  /** How many processes this session has started (tests). */
  get starts(): number {
    return this.#starts;
  }

  /** Reads the buffers after output came; calls `take()` once the line in flight is done, and settles it. */
  protected abstract settle(): void;

  /** The process of the line in flight ended (`failure`): by default the line fails with it. */
  protected ended(line: L, failure: ExecFailure): void {
    line.reject(failure);
  }

  /**
   * Queues `text(token)` (the line and its sentinel) after every line sent before it; `extra` goes into the line
   * in flight for `settle`.
   */
  protected send(text: (token: string) => string, extra: Omit<L, keyof SessionLine<R>>): Promise<R> {
    const next = this.#queue.then(() => this.#write(text, extra));
    this.#queue = next.catch(() => {});
    return next;
  }

  /** The line in flight is done: no longer pending, its timer cleared. */
  protected take(): L | undefined {
    const line = this.pending;
    if (line === undefined) return undefined;
    this.pending = undefined;
    clearTimeout(line.timer);
    return line;
  }

  #write(text: (token: string) => string, extra: Omit<L, keyof SessionLine<R>>): Promise<R> {
    const max = this.#spec.maxLines;
    if (this.#child !== undefined && max !== undefined && this.#lines >= max) this.#stop(this.#child);
    const child = this.#child ?? this.#start();
    this.#lines++;
    const token = `${this.#spec.tokenPrefix}${(this.#seq++).toString(36)}`;
    return new Promise<R>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending = undefined;
        this.#stop(child);
        reject({ killed: true, signal: 'SIGKILL', stderr: this.stderr, stdout: this.stdout });
      }, this.#spec.timeoutMs);
      this.pending = { ...extra, token, resolve, reject, timer } as L;
      child.stdin?.write(text(token));
    });
  }

  #start(): ChildProcess {
    const [file = '', ...args] = this.#spec.argv;
    const child = spawn(file, args, {
      stdio: ['pipe', this.#spec.readStdout ? 'pipe' : 'ignore', 'pipe'],
      env: this.#spec.env,
    });
    this.#child = child;
    this.#starts++;
    this.#lines = 0;
    this.stdout = '';
    this.stderr = '';
    // Not waited for: the plugin may exit at any time, and the process goes with its standard input.
    child.unref();
    for (const stream of [child.stdin, child.stdout, child.stderr]) {
      (stream as unknown as { unref?: () => void } | null)?.unref?.();
    }
    child.stdin?.on('error', () => {}); // a process that died closes its standard input: 'close' tells
    child.stdout?.setEncoding('utf8').on('data', (d: string) => {
      if (this.#child !== child) return;
      this.stdout += d;
      this.settle();
    });
    child.stderr?.setEncoding('utf8').on('data', (d: string) => {
      if (this.#child !== child) return;
      this.stderr += d;
      this.settle();
    });
    child.on('error', (err: NodeJS.ErrnoException) => {
      this.#ended(child, { code: err.code ?? 'error', message: err.message, stderr: this.stderr });
    });
    child.on('close', (code, signal) => {
      this.#ended(
        child,
        code === null ? { signal: signal ?? 'SIGKILL', stderr: this.stderr } : { code, stderr: this.stderr },
      );
    });
    return child;
  }

  #ended(child: ChildProcess, failure: ExecFailure): void {
    if (this.#child !== child) return;
    this.#child = undefined;
    const line = this.take();
    if (line !== undefined) this.ended(line, failure);
  }

  #stop(child: ChildProcess): void {
    if (this.#child === child) this.#child = undefined;
    child.stdin?.end();
    child.kill('SIGKILL');
  }
}
