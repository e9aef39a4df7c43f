/**
 * Command-line parsing (node:util parseArgs): a subcommand, its own flags and the common flags every
 * subcommand takes: `--config`, the original's `--config-file` (repeatable) and `--config-dir` (repeatable, read
 * in command-line order with the files, as oslo.config does), oslo.log's `--debug`/`-d`, `--log-file`,
 * `--log-dir`, and `--backend`, `--driver-name`, `--state-dir`, `--log-level`.
 */
import type { CommonFlags, ConfigSource } from '../config/load.ts';
import { fail } from '../errors.ts';

/** node:util as CommonJS: an ESM import of it loads about 16 more modules (1.4 MiB of RSS). */
const { parseArgs } = process.getBuiltinModule('node:util');

export const COMMON_OPTIONS = {
  config: { type: 'string' },
  'config-file': { type: 'string', multiple: true },
  'config-dir': { type: 'string', multiple: true },
  backend: { type: 'string' },
  'driver-name': { type: 'string' },
  'state-dir': { type: 'string' },
  'log-level': { type: 'string' },
  debug: { type: 'boolean', short: 'd' },
  'log-file': { type: 'string' },
  'log-dir': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

type OptionSpecs = Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }>;

export type ParsedValues = Record<string, string | boolean | string[] | ConfigSource[] | undefined>;

/**
 * Parses `args` with the common options plus `extra`; unknown flags are errors. `values.configSources` holds
 * the `--config-file` and `--config-dir` values in command-line order.
 */
export function parseCommand(args: readonly string[], extra: OptionSpecs = {}) {
  try {
    const { values, positionals, tokens } = parseArgs({
      args: [...args],
      options: { ...COMMON_OPTIONS, ...extra },
      allowPositionals: true,
      strict: true,
      tokens: true,
    });
    const configSources: ConfigSource[] = [];
    for (const token of tokens) {
      if (token.kind !== 'option' || token.value === undefined) continue;
      if (token.name === 'config-file') configSources.push({ kind: 'file', path: token.value });
      if (token.name === 'config-dir') configSources.push({ kind: 'dir', path: token.value });
    }
    return { values: { ...values, configSources } as ParsedValues, positionals };
  } catch (err) {
    throw fail.config((err as Error).message);
  }
}

/** The common flags, typed; `program` names the log file `<log_dir>/<program>.log`. */
export function commonFlags(values: ParsedValues, program = 'kuryr'): CommonFlags {
  const str = (k: string) => (typeof values[k] === 'string' ? (values[k] as string) : undefined);
  const sources = values.configSources;
  return {
    config: str('config'),
    configSources: Array.isArray(sources) ? (sources as ConfigSource[]) : undefined,
    backend: str('backend'),
    driverName: str('driver-name'),
    stateDir: str('state-dir'),
    socket: str('socket'),
    listen: str('listen'),
    logLevel: str('log-level'),
    debug: values.debug === true ? true : undefined,
    logFile: str('log-file'),
    logDir: str('log-dir'),
    program,
    dockerHost: str('docker-host'),
    metricsListen: str('metrics-listen'),
    metricsAllowRemote: values['metrics-allow-remote'] === true ? true : undefined,
  };
}
