/**
 * Structured logging (pino): JSON lines on stderr, with credentials redacted wherever they appear in a field.
 */
import { pino } from 'pino';
import type { LogLevel } from '../config/config.ts';
import type { Logger } from '../driver/context.ts';

const REDACT = ['password', '*.password', 'token', '*.token', 'headers["x-auth-token"]', '*.headers["x-auth-token"]'];

/** A logger writing JSON lines to stderr (stdout stays free for command output). */
export function createLogger(level: LogLevel, name = 'kuryr'): Logger & { level: string } {
  return pino(
    { name, level, redact: { paths: REDACT, censor: '[redacted]' } },
    pino.destination({ fd: 2, sync: true }),
  );
}

/** A logger that drops everything (tests, one-shot commands). */
export function silentLogger(): Logger {
  const noop = () => undefined;
  return { debug: noop, info: noop, warn: noop, error: noop };
}
