/**
 * Structured logging on stderr, with credentials redacted wherever they appear in a record, at any depth
 * (redact.ts: every field named like a password, secret or token, in nested objects, arrays and errors alike).
 *
 * Records are pino's JSON lines, written by a few dozen lines of our own instead of pino (whose import graph cost
 * 1.6 MiB of RSS in the plugin: worker_threads, assert, module): `{"level":30,"time":<epoch ms>,"pid":..,
 * "hostname":..,"name":"kuryr",<fields>,"msg":".."}`, levels 10 (trace) to 60 (fatal), an Error value as
 * `{type, message, stack, ...its own fields}`. Each line is written synchronously, so nothing is lost on a crash.
 *
 * Two renderings of the same records: JSON lines (the default when stderr is not a terminal: journald, Docker's
 * plugin log, files) and one readable line per record when stderr is a terminal
 * (`12:03:04.567 INFO  message  key=value ...`). `KURYR_LOG_FORMAT=json|pretty` overrides the choice.
 * The pretty form is rendered from the JSON line, after redaction, so both always carry the same fields.
 */
import type { LogLevel } from '../config/config.ts';
import { isSecretKey, redactSecrets } from './redact.ts';

/** node:fs and node:os as CommonJS: an ESM import of node:fs builds its namespace, loading fs/promises and readline. */
const fs = process.getBuiltinModule('node:fs');
const os = process.getBuiltinModule('node:os');

/** Minimal structured logger (pino's shape): what every layer is given to log with. */
export interface Logger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/** Where a logger writes: one call per record, a JSON line with its newline. */
export interface LogSink {
  write(line: string): void;
}

export type LogFormat = 'json' | 'pretty';

/** `KURYR_LOG_FORMAT` when set to json or pretty, else pretty exactly when stderr is a terminal. */
export function logFormat(
  env: NodeJS.ProcessEnv = process.env,
  stderrIsTTY = process.stderr.isTTY === true,
): LogFormat {
  const wanted = env.KURYR_LOG_FORMAT?.trim().toLowerCase();
  if (wanted === 'json' || wanted === 'pretty') return wanted;
  return stderrIsTTY ? 'pretty' : 'json';
}

/** pino's level numbers. */
export const LEVEL_VALUES: Readonly<Record<LogLevel, number>> = {
  trace: 10,
  debug: 20,
  info: 30,
  warn: 40,
  error: 50,
  fatal: 60,
};

/** A sink writing to a file descriptor, synchronously and completely. */
export function fdSink(fd: number): LogSink {
  return { write: (line) => writeFully(fd, line) };
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));

/**
 * Writes all of `text` to `fd`, synchronously. A full non-blocking pipe (EAGAIN) is waited out, 10 ms at a time,
 * as pino's synchronous destination does: a log line is never dropped.
 */
export function writeFully(fd: number, text: string): void {
  let buffer = Buffer.from(text);
  while (buffer.length > 0) {
    let written: number;
    try {
      written = fs.writeSync(fd, buffer);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
      Atomics.wait(sleeper, 0, 0, 10);
      continue;
    }
    buffer = buffer.subarray(written);
  }
}

/**
 * A logger writing to stderr (stdout stays free for command output), as JSON lines or readable lines; or, given
 * a `destination` (a log file: observability/log-destination.ts), JSON lines to it.
 */
export function createLogger(
  level: LogLevel,
  name = 'kuryr',
  options: { format?: LogFormat; color?: boolean; destination?: LogSink } = {},
): Logger & { readonly level: LogLevel } {
  const format = options.format ?? logFormat();
  const color = options.color ?? (process.stderr.isTTY === true && process.env.NO_COLOR === undefined);
  const sink: LogSink =
    options.destination ??
    (format === 'json' ? fdSink(2) : { write: (line) => writeFully(2, `${formatPretty(line, color)}\n`) });
  const threshold = LEVEL_VALUES[level];
  // The bindings of every record, as pino writes them (redacted like the fields: a name could hold anything).
  const bindings = JSON.stringify(redactSecrets({ pid: process.pid, hostname: os.hostname(), name })).slice(1, -1);
  const at = (value: number) => (obj: object, msg?: string) => {
    if (value < threshold) return;
    sink.write(`${formatRecord(value, Date.now(), bindings, obj, msg)}\n`);
  };
  return {
    level,
    debug: at(LEVEL_VALUES.debug),
    info: at(LEVEL_VALUES.info),
    warn: at(LEVEL_VALUES.warn),
    error: at(LEVEL_VALUES.error),
  };
}

/**
 * One record as a JSON line (no newline): level, time, the bindings, the (redacted) fields, then `msg`. An Error
 * given as the whole object is logged as pino does, under `err` with its message as the default message.
 */
export function formatRecord(level: number, time: number, bindings: string, obj: object, msg?: string): string {
  let fields: object = obj;
  let message = msg;
  if (obj instanceof Error) {
    fields = { err: obj };
    message ??= obj.message;
  }
  const body = (flatJson(fields) ?? stringify(redactSecrets(fields))).slice(1, -1);
  const head = `{"level":${level},"time":${time}${bindings === '' ? '' : `,${bindings}`}`;
  const tail = message === undefined ? '' : `,"msg":${JSON.stringify(message)}`;
  return `${head}${body === '' ? '' : `,${body}`}${tail}}`;
}

/**
 * The JSON of a plain object whose values are all strings, numbers, booleans or null and whose keys name no
 * credential (an access-log record): what `stringify(redactSecrets(obj))` writes, without their walk and replacer,
 * run for every key (the plugin writes one such line per request). Undefined for anything else.
 */
function flatJson(obj: object): string | undefined {
  if (Object.getPrototypeOf(obj) !== Object.prototype) return undefined;
  const record = obj as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    const value = record[key];
    const type = typeof value;
    if (type === 'object' ? value !== null : type === 'bigint') return undefined;
    if (value !== undefined && value !== null && value !== '' && isSecretKey(key)) return undefined;
  }
  return JSON.stringify(obj);
}

/** An Error as pino's serializer writes it: its class, message and stack, then its own fields. */
function serializeError(err: Error): Record<string, unknown> {
  const out: Record<string, unknown> = {
    type: err.constructor?.name ?? err.name,
    message: err.message,
    stack: err.stack,
  };
  for (const [key, value] of Object.entries(err)) if (!(key in out)) out[key] = value;
  if (err.cause !== undefined && !('cause' in out)) out.cause = err.cause;
  return out;
}

/** JSON of a record: errors serialized, BigInts as numbers, cycles as "[Circular]", functions left out. */
function stringify(value: object): string {
  // The chain of objects being written (as written, and as given: an error is written as its serialization).
  const written: object[] = [];
  const given: object[] = [];
  return JSON.stringify(value, function (this: unknown, _key, v: unknown) {
    if (typeof v === 'bigint') return v.toString();
    if (typeof v !== 'object' || v === null) return v;
    // `this` is the object holding v: leave the chain down to it.
    while (written.length > 0 && written.at(-1) !== this) {
      written.pop();
      given.pop();
    }
    if (given.includes(v)) return '[Circular]';
    const out = v instanceof Error ? serializeError(v) : v;
    written.push(out);
    given.push(v);
    return out;
  });
}

/** A logger that drops everything (tests, one-shot commands). */
export function silentLogger(): Logger {
  const noop = () => undefined;
  return { debug: noop, info: noop, warn: noop, error: noop };
}

const LEVELS: Record<number, { label: string; color: number }> = {
  10: { label: 'TRACE', color: 90 },
  20: { label: 'DEBUG', color: 36 },
  30: { label: 'INFO', color: 32 },
  40: { label: 'WARN', color: 33 },
  50: { label: 'ERROR', color: 31 },
  60: { label: 'FATAL', color: 35 },
};

/** Fields every record has that the pretty line shows in its own way (or not at all). */
const FRAME = new Set(['level', 'time', 'msg', 'pid', 'hostname', 'name', 'v']);

/** One JSON log line as `HH:MM:SS.mmm LEVEL message key=value ...`, with an error's stack on the lines below. */
export function formatPretty(line: string, color = false): string {
  let record: Record<string, unknown>;
  try {
    record = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line.trimEnd();
  }
  const paint = (code: number, text: string) => (color ? `\u001b[${code}m${text}\u001b[0m` : text);
  const level = LEVELS[Number(record.level)] ?? { label: String(record.level), color: 0 };
  const time = typeof record.time === 'number' ? new Date(record.time).toISOString().slice(11, 23) : '';
  const fields: string[] = [];
  const stacks: string[] = [];
  for (const [key, value] of Object.entries(record)) {
    if (FRAME.has(key) || value === undefined) continue;
    if (isErrorLike(value)) {
      fields.push(`${key}=${fieldValue(`${value.type ?? 'Error'}: ${value.message}`)}`);
      if (typeof value.stack === 'string') stacks.push(...value.stack.split('\n').slice(1));
      continue;
    }
    fields.push(`${paint(90, `${key}=`)}${fieldValue(value)}`);
  }
  const head = [paint(90, time), paint(level.color, level.label.padEnd(5)), String(record.msg ?? '')]
    .filter((p) => p !== '')
    .join(' ');
  const text = fields.length > 0 ? `${head}  ${fields.join(' ')}` : head;
  return stacks.length > 0 ? `${text}\n${stacks.map((s) => paint(90, `    ${s.trim()}`)).join('\n')}` : text;
}

function isErrorLike(value: unknown): value is { type?: string; message: string; stack?: string } {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { message?: unknown }).message === 'string' &&
    ('stack' in value || 'type' in value)
  );
}

/** A field value: bare when it is a simple token, JSON otherwise (quotes, objects, arrays). */
function fieldValue(value: unknown): string {
  if (typeof value === 'number' || typeof value === 'boolean' || value === null) return String(value);
  if (typeof value === 'string' && /^[^\s"=]+$/.test(value)) return value;
  return JSON.stringify(value);
}
