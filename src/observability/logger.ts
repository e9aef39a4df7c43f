/**
 * Structured logging (pino) on stderr, with credentials redacted wherever they appear in a record, at any depth
 * (redact.ts: every field named like a password, secret or token, in nested objects, arrays and errors alike).
 *
 * Two renderings of the same records: JSON lines (the default when stderr is not a terminal: journald, Docker's
 * plugin log, files) and one readable line per record when stderr is a terminal
 * (`12:03:04.567 INFO  message  key=value ...`). `KURYR_LOG_FORMAT=json|pretty` overrides the choice.
 * The pretty form is rendered from pino's JSON, after redaction, so both always carry the same fields.
 */
import { writeSync } from 'node:fs';
import { pino } from 'pino';
import type { LogLevel } from '../config/config.ts';
import { redactSecrets } from './redact.ts';

/** Minimal structured logger (pino's shape): what every layer is given to log with. */
export interface Logger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
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

/**
 * A logger writing to stderr (stdout stays free for command output), as JSON lines or readable lines; or, given
 * a `destination` (a log file: observability/log-destination.ts), JSON lines to it.
 */
export function createLogger(
  level: LogLevel,
  name = 'kuryr',
  options: { format?: LogFormat; color?: boolean; destination?: pino.DestinationStream } = {},
): Logger & { level: string } {
  const format = options.format ?? logFormat();
  const color = options.color ?? (process.stderr.isTTY === true && process.env.NO_COLOR === undefined);
  const destination =
    options.destination ??
    (format === 'json'
      ? pino.destination({ fd: 2, sync: true })
      : { write: (line: string) => void writeSync(2, `${formatPretty(line, color)}\n`) });
  return pino({ name, level, ...REDACTING }, destination);
}

/**
 * pino options that redact every record (its fields and the base bindings) before it is written. pino's
 * own `redact` takes fixed paths (`*.password` is one level deep only); this walks the whole record.
 */
export const REDACTING = {
  formatters: {
    log: (record: Record<string, unknown>) => redactSecrets(record),
    bindings: (bindings: Record<string, unknown>) => redactSecrets(bindings),
  },
} as const;

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

/** One pino JSON line as `HH:MM:SS.mmm LEVEL message key=value ...`, with an error's stack on the lines below. */
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
