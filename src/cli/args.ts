/**
 * Command-line parsing (node:util parseArgs): a subcommand, its own flags and the common flags every
 * subcommand takes, before or after the command: `--config`, the original's `--config-file` (repeatable) and
 * `--config-dir` (repeatable, read in command-line order with the files, as oslo.config does), oslo.log's
 * `--debug`/`-d`, `--log-file`, `--log-dir`, and `--backend`, `--driver-name`, `--state-dir`, `--log-level`.
 *
 * A malformed command line (unknown command or option, an option without its value, a value for a flag that
 * takes none, a missing or extra argument, a value of the wrong shape) is a UsageError: the CLI prints one line
 * and a pointer to the command's `--help`, and exits 2. Everything else that fails exits 1.
 */
import type { CommonFlags, ConfigSource } from '../config/load.ts';

export interface OptionSpec {
  type: 'string' | 'boolean';
  short?: string;
  multiple?: boolean;
}

export type OptionSpecs = Record<string, OptionSpec>;

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
  version: { type: 'boolean' },
} as const satisfies OptionSpecs;

export type ParsedValues = Record<string, string | boolean | string[] | ConfigSource[] | undefined>;

/** A malformed command line; `command` names the help to point at (`status`, `subnetpool create`; '' = kuryr). */
export class UsageError extends Error {
  readonly command: string;

  constructor(message: string, command = '') {
    super(message);
    this.name = 'UsageError';
    this.command = command;
  }
}

/** `--version` anywhere before a `--` asks for the version, whatever else the line holds. */
export function wantsVersion(argv: readonly string[]): boolean {
  const end = argv.indexOf('--');
  return (end === -1 ? argv : argv.slice(0, end)).includes('--version');
}

type Token = ReturnType<typeof parseArgs>['tokens'] extends (infer T)[] | undefined ? T : never;

function tokensOf(args: readonly string[], options: OptionSpecs): Token[] {
  return parseArgs({ args: [...args], options, allowPositionals: true, strict: false, tokens: true }).tokens;
}

/** The first problem with an option token, or undefined. */
function optionProblem(token: Token, options: OptionSpecs): string | undefined {
  if (token.kind !== 'option') return undefined;
  const spec = options[token.name];
  if (spec === undefined) return `unknown option ${token.rawName}`;
  if (spec.type === 'boolean') return token.value === undefined ? undefined : `option ${token.rawName} takes no value`;
  if (token.value === undefined) return `option ${token.rawName} needs a value`;
  if (token.inlineValue !== true && token.value.startsWith('-') && token.value !== '-') {
    return `option ${token.rawName} needs a value (got the option ${token.value}; for a value that starts with '-', write ${token.rawName}=VALUE)`;
  }
  return undefined;
}

/**
 * Splits the command line at the command: the common options before it, the command, the rest.
 * Only the common options may come before the command.
 */
export function splitCommand(argv: readonly string[]): {
  before: string[];
  command: string | undefined;
  rest: string[];
  help: boolean;
} {
  const tokens = tokensOf(argv, COMMON_OPTIONS);
  const first = tokens.find((t) => t.kind === 'positional');
  const end = first === undefined ? argv.length : first.index;
  const leading = tokens.filter((t) => t.index < end);
  let help = false;
  for (const token of leading) {
    if (token.kind !== 'option') continue;
    if (!(token.name in COMMON_OPTIONS)) {
      throw new UsageError(`${token.rawName} is not a common option: put it after the command`);
    }
    const problem = optionProblem(token, COMMON_OPTIONS);
    if (problem !== undefined) throw new UsageError(problem);
    if (token.name === 'help') help = true;
  }
  const terminator = leading.find((t) => t.kind === 'option-terminator')?.index;
  return {
    before: argv.slice(0, end).filter((_, i) => i !== terminator),
    command: first?.kind === 'positional' ? first.value : undefined,
    rest: argv.slice(end + 1),
    help,
  };
}

/** The first positional of `args` (a group's action: `create` in `subnetpool --json create`), and the others. */
export function splitAction(
  args: readonly string[],
  options: OptionSpecs,
): { action: string | undefined; rest: string[] } {
  const first = tokensOf(args, { ...COMMON_OPTIONS, ...options }).find((t) => t.kind === 'positional');
  if (first?.kind !== 'positional') return { action: undefined, rest: [...args] };
  return { action: first.value, rest: args.filter((_, i) => i !== first.index) };
}

/** Whether `-h`/`--help` is among `args` (as an option, not as another option's value). */
export function wantsHelp(args: readonly string[], extra: OptionSpecs = {}): boolean {
  return tokensOf(args, { ...COMMON_OPTIONS, ...extra }).some((t) => t.kind === 'option' && t.name === 'help');
}

/**
 * Parses `args` with the common options plus `extra`; a malformed line is a UsageError naming `command`.
 * `values.configSources` holds the `--config-file` and `--config-dir` values in command-line order.
 */
export function parseCommand(args: readonly string[], extra: OptionSpecs = {}, command = '') {
  const options: OptionSpecs = { ...COMMON_OPTIONS, ...extra };
  for (const token of tokensOf(args, options)) {
    const problem = optionProblem(token, options);
    if (problem !== undefined) throw new UsageError(problem, command);
  }
  try {
    const { values, positionals, tokens } = parseArgs({
      args: [...args],
      options,
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
    throw new UsageError((err as Error).message.split('\n')[0]!, command);
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
