/**
 * Where log lines go, from oslo.log's options in `[DEFAULT]` (`log_file`, `log_dir`, `use_stderr`), so that
 * deployments that collect the original's log files (kolla-ansible: `log_dir = /var/log/kolla/kuryr`) find ours
 * at the same place.
 *
 * The file name is built as oslo.log's `_get_log_file_path` builds it (oslo_log/log.py):
 *   log_file alone → log_file; log_dir and log_file → log_dir/log_file; log_dir alone → log_dir/<program>.log.
 * Unlike oslo.log (which then logs to stdout), kuryr-ts logs to stderr when there is no file, and with a file
 * also to stderr only when `use_stderr` is true. The file is opened for appending (created if missing) and
 * reopened on SIGHUP, for logrotate.
 */
import path from 'node:path';
import { fail } from '../errors.ts';
import { fdSink, type LogSink, writeFully } from './logger.ts';

/** node:fs as CommonJS: an ESM import of node:fs builds its namespace, loading fs/promises and readline. */
const fs = process.getBuiltinModule('node:fs');

export interface LogFileOptions {
  /** `[DEFAULT] log_file` (or `--log-file`); null when unset. */
  logFile: string | null;
  /** `[DEFAULT] log_dir` (or `--log-dir`); null when unset. */
  logDir: string | null;
  /** `[DEFAULT] use_stderr`. */
  useStderr: boolean;
  /** The program's name, as oslo.log's binary name: `kuryr-server`, `kuryr`. */
  program: string;
}

/** The log file's path, or null to log to stderr only. */
export function logFilePath(options: Pick<LogFileOptions, 'logFile' | 'logDir' | 'program'>): string | null {
  const { logFile, logDir, program } = options;
  if (logFile !== null && logDir === null) return logFile;
  if (logFile !== null && logDir !== null) return path.join(logDir, logFile);
  if (logDir !== null) return `${path.join(logDir, program)}.log`;
  return null;
}

/** A destination for the logger plus what it writes to; `close` stops reopening on SIGHUP. */
export interface LogDestination {
  stream: LogSink;
  /** The file written to, or null for stderr only. */
  file: string | null;
  /** Also written to stderr. */
  stderr: boolean;
  close(): void;
}

/**
 * Opens the destination the options describe, or returns null when logging goes to stderr only (the
 * logger's default). A file that cannot be opened is a configuration error naming it.
 */
export function openLogDestination(options: LogFileOptions): LogDestination | null {
  const file = logFilePath(options);
  if (file === null) return null;
  const open = () => {
    try {
      return fs.openSync(file, 'a');
    } catch (err) {
      throw fail.config(`cannot open log file ${file}: ${(err as Error).message}`);
    }
  };
  let fd = open();
  // Every line is written synchronously: nothing to flush. A file that cannot be reopened keeps the old one.
  const reopen = () => {
    try {
      const next = open();
      fs.closeSync(fd);
      fd = next;
    } catch (err) {
      writeFully(2, `kuryr: ${(err as Error).message}\n`);
    }
  };
  process.on('SIGHUP', reopen);
  const stderr = fdSink(2);
  const stream: LogSink = {
    write: (line) => {
      writeFully(fd, line);
      if (options.useStderr) stderr.write(line);
    },
  };
  return {
    stream,
    file,
    stderr: options.useStderr,
    // The file stays open: lines logged while the process stops still reach it.
    close: () => {
      process.off('SIGHUP', reopen);
    },
  };
}
