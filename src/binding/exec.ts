/**
 * The one way the plugin runs a host program (`ip`, `nft`, `iptables`, `ovs-vsctl`, `ss`, `sysctl`, bind scripts,
 * the doctor's probes): an argument array (never a shell), the minimal environment of `toolEnv()` (no secret of
 * the plugin's own environment reaches a child), an optional standard input, a time limit (SIGKILL) and an
 * optional AbortSignal. A failure is one error class, `CommandError`, naming the command line, the exit status
 * (or the signal, the time limit, the start error) and what the program printed on standard error.
 */
import { spawn } from 'node:child_process';
import { redactText } from '../observability/redact.ts';
import { BindingError, type BindingErrorReason, bindingErrorReasons } from './errors.ts';
import { pythonRepr } from './python-repr.ts';
import { toolEnv } from './tool-env.ts';

/** What a finished program printed. */
export interface CommandOutput {
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  /** SIGKILL after this many milliseconds. */
  timeoutMs: number;
  /** Written to the program's standard input (then closed); default: an empty, closed standard input. */
  input?: string;
  /** Kills the program (SIGKILL) when aborted. */
  signal?: AbortSignal;
}

/**
 * Runs one program with arguments: `execRunner` in production, a fake in unit tests. Resolves when it exits 0;
 * otherwise rejects with an `ExecFailure` (which `runCommand` turns into a `CommandError`).
 */
export type CommandRunner = (file: string, args: readonly string[], options: RunOptions) => Promise<CommandOutput>;

/** How a runner reports a failure (the shape Node's `execFile` rejects with). */
export interface ExecFailure {
  /** Exit status (number), or the system's error code when the program could not be started (`ENOENT`, ...). */
  code?: number | string | null;
  /** True when the runner killed it at its time limit. */
  killed?: boolean;
  signal?: string | null;
  stdout?: string;
  stderr?: string;
  message?: string;
}

/** Most bytes of each of standard output and error kept; beyond it the program is killed. */
const MAX_OUTPUT = 64 * 1024 * 1024;

/** The default runner: `spawn` with `toolEnv()`, no shell, SIGKILL at the time limit or on abort. */
export const execRunner: CommandRunner = (file, args, { timeoutMs, input, signal }) =>
  new Promise((resolve, reject) => {
    let stdout = '';
    let stderr = '';
    let failure: ExecFailure | undefined;
    const child = spawn(file, [...args], { stdio: ['pipe', 'pipe', 'pipe'], env: toolEnv() });
    const kill = (why: ExecFailure) => {
      failure ??= why;
      child.kill('SIGKILL');
    };
    const timer = setTimeout(() => kill({ killed: true, signal: 'SIGKILL' }), timeoutMs);
    const onAbort = () => kill({ code: 'ABORT_ERR', message: 'aborted' });
    if (signal?.aborted) onAbort();
    else signal?.addEventListener('abort', onAbort, { once: true });
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    };
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
      if (stdout.length > MAX_OUTPUT) kill({ code: 'ERR_CHILD_PROCESS_STDIO_MAXBUFFER', message: 'too much output' });
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
      if (stderr.length > MAX_OUTPUT) kill({ code: 'ERR_CHILD_PROCESS_STDIO_MAXBUFFER', message: 'too much output' });
    });
    child.stdin.on('error', () => {}); // a program that exits early closes its standard input: its status tells
    child.on('error', (err: NodeJS.ErrnoException) => {
      done();
      reject(Object.assign(err, failure ?? {}, { stdout, stderr }));
    });
    child.on('close', (code, killedBy) => {
      done();
      if (failure !== undefined) reject(Object.assign(new Error('killed'), failure, { stdout, stderr }));
      else if (code === 0) resolve({ stdout, stderr });
      else if (code !== null) reject(Object.assign(new Error(`exit ${code}`), { code, stdout, stderr }));
      else reject(Object.assign(new Error(`killed by ${killedBy}`), { signal: killedBy, stdout, stderr }));
    });
    child.stdin.end(input ?? '');
  });

/** Most characters of each of stdout and stderr a processutils-style message shows (the rest is in the fields). */
export const OUTPUT_EXCERPT_CHARS = 400;

/**
 * What an error message shows of a program's output: credentials replaced (`redactText`), and only the last
 * `max` characters of a longer output (where a failing program says why), marked as cut.
 */
export function outputExcerpt(text: string, max = OUTPUT_EXCERPT_CHARS): string {
  const clean = redactText(text);
  if (clean.length <= max) return clean;
  return `[${clean.length - max} characters omitted]…${clean.slice(-max)}`;
}

/**
 * Reasons whose message is kuryr's (oslo.concurrency `processutils`) text, so an operator sees the same as with
 * the original: `Unexpected error while running command.\nCommand: …\nExit code: N\nStdout: '…'\nStderr: '…'`.
 * Every other failure reads `` `ip link add …` exited with status 2: RTNETLINK answers: File exists ``.
 */
const PROCESSUTILS_REASONS: ReadonlySet<BindingErrorReason> = new Set([
  bindingErrorReasons.bindScript,
  bindingErrorReasons.ovsCommand,
]);

export interface CommandFailure {
  /** Exit status; null when the program was killed, timed out or could not be started. */
  exitCode: number | null;
  stdout?: string;
  stderr: string;
  timedOut?: boolean;
  /** The signal that killed it. */
  signal?: string;
  /** The system's error code when it could not be started (`ENOENT`, `EACCES`, ...). */
  startError?: string;
  /** What happened, replacing the default wording (`printed invalid JSON (...)`, `could not be run; install …`). */
  detail?: string;
}

/** A host program that exited non-zero, timed out, was killed, could not be started or printed nonsense. */
export class CommandError extends BindingError {
  override readonly name = 'CommandError';
  /** The command line as run: `[program, ...args]`. */
  readonly argv: readonly string[];
  /** Exit status; null when the program was killed, timed out or could not be started. */
  readonly exitCode: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly timedOut: boolean;
  readonly signal: string | undefined;
  /** The program could not be started (`ENOENT`, `EACCES`, ...): the system's error code. */
  readonly startError: string | undefined;

  constructor(reason: BindingErrorReason, argv: readonly string[], result: CommandFailure) {
    const stdout = result.stdout ?? '';
    super(
      reason,
      PROCESSUTILS_REASONS.has(reason) ? processutilsMessage(argv, result, stdout) : shortMessage(argv, result),
    );
    this.argv = argv;
    this.exitCode = result.exitCode;
    this.stdout = stdout;
    this.stderr = result.stderr;
    this.timedOut = result.timedOut ?? false;
    this.signal = result.signal;
    this.startError = result.startError;
  }
}

function processutilsMessage(argv: readonly string[], result: CommandFailure, stdout: string): string {
  const description = result.timedOut
    ? `Command timed out (${result.detail ?? 'time limit reached'}); it was killed.`
    : result.startError !== undefined
      ? `Command could not be run (${result.startError}${result.detail ? `: ${result.detail}` : ''}).`
      : 'Unexpected error while running command.';
  // processutils prints a killed process's status as the negative signal number; we name the signal.
  const exit = result.exitCode ?? (result.signal === undefined ? '-' : result.signal);
  return `${description}\nCommand: ${argv.join(' ')}\nExit code: ${exit}\nStdout: ${pythonRepr(outputExcerpt(stdout))}\nStderr: ${pythonRepr(outputExcerpt(result.stderr))}`;
}

function shortMessage(argv: readonly string[], result: CommandFailure): string {
  const what =
    result.detail ??
    (result.exitCode !== null
      ? `exited with status ${result.exitCode}`
      : result.signal !== undefined
        ? `was killed by ${result.signal}`
        : 'failed');
  const text = result.stderr.trim();
  return `\`${argv.join(' ')}\` ${what}${text ? `: ${text}` : ''}`;
}

/** The `CommandError` for what a runner rejected with. */
export function commandError(
  reason: BindingErrorReason,
  argv: readonly string[],
  caught: unknown,
  timeoutMs: number,
): CommandError {
  if (caught instanceof CommandError) return caught;
  const failure = (caught ?? {}) as ExecFailure;
  const stdout = typeof failure.stdout === 'string' ? failure.stdout : '';
  const stderr = typeof failure.stderr === 'string' ? failure.stderr : '';
  const processutils = PROCESSUTILS_REASONS.has(reason);
  if (typeof failure.code === 'number')
    return new CommandError(reason, argv, { exitCode: failure.code, stdout, stderr });
  if (failure.killed) {
    const detail = processutils ? `after ${timeoutMs} ms` : `timed out after ${timeoutMs} ms`;
    return new CommandError(reason, argv, {
      exitCode: null,
      stdout,
      stderr,
      timedOut: true,
      signal: 'SIGKILL',
      detail,
    });
  }
  if (failure.code === 'ERR_CHILD_PROCESS_STDIO_MAXBUFFER') {
    return new CommandError(reason, argv, {
      exitCode: null,
      stdout,
      stderr,
      detail: 'printed more than the output limit',
    });
  }
  if (typeof failure.signal === 'string') {
    return new CommandError(reason, argv, { exitCode: null, stdout, stderr, signal: failure.signal });
  }
  // Not started at all (ENOENT for a missing program, ...) or aborted: keep the system's explanation.
  const startError = typeof failure.code === 'string' ? failure.code : 'error';
  const message = failure.message ?? String(caught);
  return processutils
    ? new CommandError(reason, argv, { exitCode: null, stdout, stderr, startError, detail: message })
    : new CommandError(reason, argv, {
        exitCode: null,
        stdout,
        stderr: stderr || message,
        startError,
        detail: 'could not be run',
      });
}

/**
 * Run `file args...`: resolve with its output when it exits 0, reject with a `CommandError` carrying `reason`
 * otherwise.
 */
export async function runCommand(
  reason: BindingErrorReason,
  file: string,
  args: readonly string[],
  options: RunOptions & { runner?: CommandRunner | undefined },
): Promise<CommandOutput> {
  const { runner = execRunner, ...run } = options;
  try {
    return await runner(file, args, run);
  } catch (caught) {
    throw commandError(reason, [file, ...args], caught, options.timeoutMs);
  }
}
