/**
 * External programs of the binding layer other than `ip`: bind scripts (hook.ts) and `ovs-vsctl` (ovs.ts).
 * Argument arrays only (`execFile`, never a shell), a time limit, and failures reported the way kuryr's
 * oslo.concurrency `processutils` reports them, so an operator sees the same text as with the original.
 */
import { execFile } from 'node:child_process';
import { redactText } from '../observability/redact.ts';
import { BindingError, type BindingErrorReason } from './errors.ts';
import { toolEnv } from './tool-env.ts';

/** What a finished program printed. */
export interface CommandOutput {
  stdout: string;
  stderr: string;
}

/** Runs one program with arguments; `execFile` in production, a fake in unit tests. */
export type CommandRunner = (
  file: string,
  args: readonly string[],
  options: { timeoutMs: number },
) => Promise<CommandOutput>;

/** Most characters of each of stdout and stderr an error message shows (the rest is in the error's fields). */
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
 * A program that exited non-zero, timed out, was killed or could not be started. The message is
 * processutils' text: `Unexpected error while running command.\nCommand: …\nExit code: N\nStdout: '…'\nStderr: '…'`,
 * with a short, redacted excerpt of each output (`outputExcerpt`): the message becomes Docker's `Err`, which
 * ends up in `docker` command output and dockerd's log. The full output stays in `stdout` / `stderr`.
 */
export class CommandError extends BindingError {
  override readonly name = 'CommandError';
  /** The command line as run: `[program, ...args]`. */
  readonly argv: readonly string[];
  /** Exit status; null when the program was killed, timed out or could not be started. */
  readonly exitCode: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly timedOut: boolean;
  /** The program could not be started (`ENOENT`, `EACCES`, ...): the system's error code. */
  readonly startError: string | undefined;

  constructor(
    reason: BindingErrorReason,
    argv: readonly string[],
    result: {
      exitCode: number | null;
      stdout: string;
      stderr: string;
      timedOut?: boolean;
      signal?: string;
      startError?: string;
      detail?: string;
    },
  ) {
    const description = result.timedOut
      ? `Command timed out (${result.detail ?? 'time limit reached'}); it was killed.`
      : result.startError !== undefined
        ? `Command could not be run (${result.startError}${result.detail ? `: ${result.detail}` : ''}).`
        : 'Unexpected error while running command.';
    // processutils prints a killed process's status as the negative signal number; we name the signal.
    const exit = result.exitCode ?? (result.signal === undefined ? '-' : result.signal);
    super(
      reason,
      `${description}\nCommand: ${argv.join(' ')}\nExit code: ${exit}\nStdout: ${pythonRepr(outputExcerpt(result.stdout))}\nStderr: ${pythonRepr(outputExcerpt(result.stderr))}`,
    );
    this.argv = argv;
    this.exitCode = result.exitCode;
    this.stdout = result.stdout;
    this.stderr = result.stderr;
    this.timedOut = result.timedOut ?? false;
    this.startError = result.startError;
  }
}

/** The failure shape `execFile` rejects with. */
interface ExecFileFailure {
  code?: number | string | null;
  killed?: boolean;
  signal?: string | null;
  stdout?: string;
  stderr?: string;
  message?: string;
}

/** The default runner: `execFile` with a SIGKILL at the time limit, 16 MiB of output at most, `toolEnv()`. */
export const execRunner: CommandRunner = (file, args, { timeoutMs }) =>
  new Promise((resolve, reject) => {
    execFile(
      file,
      [...args],
      { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 16 * 1024 * 1024, encoding: 'utf8', env: toolEnv() },
      (error, stdout, stderr) => {
        if (error) reject(Object.assign(error, { stdout, stderr }));
        else resolve({ stdout, stderr });
      },
    );
  });

/**
 * Run `file args...`; resolve with its output when it exits 0, reject with `CommandError` (carrying `reason`)
 * otherwise.
 */
export async function runCommand(
  reason: BindingErrorReason,
  file: string,
  args: readonly string[],
  options: { timeoutMs: number; runner?: CommandRunner },
): Promise<CommandOutput> {
  const argv = [file, ...args];
  const runner = options.runner ?? execRunner;
  try {
    return await runner(file, args, { timeoutMs: options.timeoutMs });
  } catch (caught) {
    const failure = (caught ?? {}) as ExecFileFailure;
    const stdout = typeof failure.stdout === 'string' ? failure.stdout : '';
    const stderr = typeof failure.stderr === 'string' ? failure.stderr : '';
    if (typeof failure.code === 'number') {
      throw new CommandError(reason, argv, { exitCode: failure.code, stdout, stderr });
    }
    if (failure.killed && failure.signal === 'SIGKILL') {
      const detail = `after ${options.timeoutMs} ms`;
      throw new CommandError(reason, argv, { exitCode: null, stdout, stderr, timedOut: true, detail });
    }
    if (failure.signal) {
      throw new CommandError(reason, argv, { exitCode: null, stdout, stderr, signal: failure.signal });
    }
    const startError = typeof failure.code === 'string' ? failure.code : 'error';
    throw new CommandError(reason, argv, {
      exitCode: null,
      stdout,
      stderr,
      startError,
      ...(failure.message === undefined ? {} : { detail: failure.message }),
    });
  }
}

/**
 * Python 3's `repr()` of a JSON value, as kuryr renders `binding:vif_details` for bind scripts
 * (`str(dict)`) and command output in errors (`%r`): `{'port_filter': True, 'bridge_name': 'br-int'}`.
 *
 * Limits, inherent to JSON having been parsed already: a float with an integral value (`1.0`) renders as an
 * int (`1`), and object keys that look like array indices come first (JavaScript's property order).
 */
export function pythonRepr(value: unknown): string {
  if (value === null || value === undefined) return 'None';
  if (value === true) return 'True';
  if (value === false) return 'False';
  if (typeof value === 'string') return pythonStr(value);
  if (typeof value === 'number') return pythonNumber(value);
  if (Array.isArray(value)) return `[${value.map(pythonRepr).join(', ')}]`;
  if (typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>);
    return `{${entries.map(([k, v]) => `${pythonStr(k)}: ${pythonRepr(v)}`).join(', ')}}`;
  }
  return pythonStr(String(value));
}

/** Characters Python's `str.isprintable()` rejects (other than the space, which is printable). */
const NOT_PRINTABLE = /[\p{C}\p{Z}]/u;

function pythonStr(s: string): string {
  // Python picks single quotes unless the text has a single quote and no double quote.
  const quote = s.includes("'") && !s.includes('"') ? '"' : "'";
  let out = quote;
  for (const ch of s) {
    const cp = ch.codePointAt(0) ?? 0;
    if (ch === quote || ch === '\\') out += `\\${ch}`;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (ch !== ' ' && NOT_PRINTABLE.test(ch)) {
      if (cp < 0x100) out += `\\x${cp.toString(16).padStart(2, '0')}`;
      else if (cp < 0x10000) out += `\\u${cp.toString(16).padStart(4, '0')}`;
      else out += `\\U${cp.toString(16).padStart(8, '0')}`;
    } else out += ch;
  }
  return out + quote;
}

function pythonNumber(n: number): string {
  if (Number.isNaN(n)) return 'nan';
  if (!Number.isFinite(n)) return n > 0 ? 'inf' : '-inf';
  if (Number.isInteger(n) && Math.abs(n) < 1e21) return BigInt(n).toString();
  // float repr: the shortest round-trip digits (as JavaScript's), fixed notation for exponents -4..15.
  const [mantissa = '0', exp = '0'] = n.toExponential().split('e');
  const e = Number(exp);
  const negative = mantissa.startsWith('-');
  const digits = mantissa.replace(/^-/, '').replace('.', '');
  let body: string;
  if (e < -4 || e >= 16) {
    const m = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    body = `${m}e${e < 0 ? '-' : '+'}${String(Math.abs(e)).padStart(2, '0')}`;
  } else if (e < 0) {
    body = `0.${'0'.repeat(-e - 1)}${digits}`;
  } else if (digits.length > e + 1) {
    body = `${digits.slice(0, e + 1)}.${digits.slice(e + 1)}`;
  } else {
    body = `${digits}${'0'.repeat(e + 1 - digits.length)}.0`;
  }
  return negative ? `-${body}` : body;
}
