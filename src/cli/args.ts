/**
 * Command-line parsing (node:util parseArgs): a subcommand, its own flags and the common flags every
 * subcommand takes (`--config`, `--backend`, `--driver-name`, `--state-dir`).
 */
import { parseArgs } from 'node:util';
import { fail } from '../errors.ts';
import type { CommonFlags } from '../config/load.ts';

export const COMMON_OPTIONS = {
  config: { type: 'string' },
  backend: { type: 'string' },
  'driver-name': { type: 'string' },
  'state-dir': { type: 'string' },
  'log-level': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

type OptionSpecs = Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }>;

/** Parses `args` with the common options plus `extra`; unknown flags are errors. */
export function parseCommand(args: readonly string[], extra: OptionSpecs = {}) {
  try {
    const { values, positionals } = parseArgs({
      args: [...args],
      options: { ...COMMON_OPTIONS, ...extra },
      allowPositionals: true,
      strict: true,
    });
    return { values: values as Record<string, string | boolean | string[] | undefined>, positionals };
  } catch (err) {
    throw fail.config((err as Error).message);
  }
}

/** The common flags, typed. */
export function commonFlags(values: Record<string, string | boolean | string[] | undefined>): CommonFlags {
  const str = (k: string) => (typeof values[k] === 'string' ? (values[k] as string) : undefined);
  return {
    config: str('config'),
    backend: str('backend'),
    driverName: str('driver-name'),
    stateDir: str('state-dir'),
    socket: str('socket'),
    listen: str('listen'),
    logLevel: str('log-level'),
    dockerHost: str('docker-host'),
    metricsListen: str('metrics-listen'),
    metricsAllowRemote: values['metrics-allow-remote'] === true ? true : undefined,
  };
}
