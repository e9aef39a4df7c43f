#!/usr/bin/env node
/**
 * The `kuryr` command: `serve` (also `kuryr-server`, the original's command, via bin/kuryr-server), `status`,
 * `doctor`, `backup`, `restore`, `gc`, `subnetpool`, `network`, `help`, `--version`. Thin: splits the command
 * line (common options before or after the command), validates it against the command's table entry
 * (commands.ts), loads the configuration, runs one subcommand.
 *
 * Exit status: 0 done (and `--help`, `--version`); 1 the command failed (one line on stderr: the error's code and
 * message); 2 a usage error (args.ts UsageError: one line on stderr and a pointer to `kuryr <command> --help`).
 */
import { readFileSync } from 'node:fs';
import type { Config } from '../config/config.ts';
import { loadConfig, parseListen } from '../config/load.ts';
import { KuryrError } from '../errors.ts';
import {
  commonFlags,
  type ParsedValues,
  parseCommand,
  splitAction,
  splitCommand,
  UsageError,
  wantsHelp,
  wantsVersion,
} from './args.ts';
import {
  actionsOf,
  type CommandSpec,
  commandHelp,
  findCommand,
  GROUPS,
  groupHelp,
  groupOptions,
  overviewHelp,
} from './commands.ts';
import { isCidr } from '../util/ip.ts';

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

interface Invocation {
  spec: CommandSpec;
  values: ParsedValues;
  positionals: string[];
}

async function main(argv: readonly string[]): Promise<number> {
  if (wantsVersion(argv)) {
    process.stdout.write(`kuryr-ts ${version()}\n`);
    return 0;
  }
  const { before, command, rest, help } = splitCommand(argv);
  if (command === undefined) {
    if (help) return print(overviewHelp());
    process.stderr.write(overviewHelp());
    return 2;
  }
  if (command === 'version') return print(`kuryr-ts ${version()}\n`);
  if (command === 'help') return helpCommand(rest);
  let path = command;
  let args = [...before, ...rest];
  if (Object.hasOwn(GROUPS, command)) {
    const { action, rest: others } = splitAction(rest, groupOptions(command));
    if (action === undefined) {
      if (help || wantsHelp(rest, groupOptions(command))) return print(groupHelp(command));
      throw new UsageError(`${command} needs an action: ${actionNames(command)}`, command);
    }
    if (findCommand(`${command} ${action}`) === undefined) {
      throw new UsageError(`unknown ${command} action ${JSON.stringify(action)} (${actionNames(command)})`, command);
    }
    path = `${command} ${action}`;
    args = [...before, ...others];
  }
  const spec = findCommand(path);
  if (spec === undefined) throw new UsageError(`unknown command ${JSON.stringify(command)}`);
  if (help || wantsHelp(args, spec.options)) return print(commandHelp(spec));
  const { values, positionals } = parseCommand(args, spec.options, spec.path);
  checkArguments(spec, positionals);
  checkValues(spec, values);
  return run({ spec, values, positionals });
}

function actionNames(group: string): string {
  return actionsOf(group)
    .map((a) => a.path.slice(group.length + 1))
    .join(', ');
}

/** `kuryr help [command [action]]`. */
function helpCommand(args: readonly string[]): number {
  const { positionals } = parseCommand(args, {}, '');
  const [command, action, ...extra] = positionals;
  if (command === undefined) return print(overviewHelp());
  if (Object.hasOwn(GROUPS, command) && action === undefined) return print(groupHelp(command));
  const spec = findCommand(action === undefined ? command : `${command} ${action}`);
  if (spec === undefined || extra.length > 0) {
    throw new UsageError(`no help for ${JSON.stringify(positionals.join(' '))}: not a command`);
  }
  return print(commandHelp(spec));
}

/** The number of positional arguments. */
function checkArguments(spec: CommandSpec, positionals: readonly string[]): void {
  const { min, max, name } = spec.args;
  if (positionals.length < min) throw new UsageError(`${spec.path} needs ${name}`, spec.path);
  if (positionals.length > max) {
    const extra = positionals.slice(max).map((p) => JSON.stringify(p));
    throw new UsageError(
      max === 0
        ? `${spec.path} takes no arguments, got ${extra.join(' ')}`
        : `${spec.path} takes one ${name}, got also ${extra.join(' ')}`,
      spec.path,
    );
  }
}

/** The shape of option values the command line alone can judge (the configuration loader judges the rest). */
function checkValues(spec: CommandSpec, values: ParsedValues): void {
  const bad = (message: string) => new UsageError(message, spec.path);
  const str = (k: string) => (typeof values[k] === 'string' ? (values[k] as string) : undefined);
  const list = (k: string) => (Array.isArray(values[k]) ? (values[k] as string[]) : []);
  const backend = str('backend');
  if (backend !== undefined && !['embedded', 'neutron'].includes(backend.trim().toLowerCase())) {
    throw bad(`--backend must be embedded or neutron, got ${JSON.stringify(backend)}`);
  }
  const level = str('log-level');
  if (level !== undefined && !LOG_LEVELS.includes(level)) {
    throw bad(`--log-level must be one of ${LOG_LEVELS.join(', ')}; got ${JSON.stringify(level)}`);
  }
  if (str('socket') !== undefined && str('listen') !== undefined) {
    throw bad('--socket and --listen are mutually exclusive');
  }
  for (const flag of ['listen', 'metrics-listen']) {
    const text = str(flag);
    if (text === undefined || (flag === 'metrics-listen' && text === '')) continue;
    try {
      parseListen(text, `--${flag}`);
    } catch (err) {
      throw bad((err as Error).message);
    }
  }
  const grace = str('grace');
  if (grace !== undefined && !/^\d+(\.\d+)?$/.test(grace.trim())) {
    throw bad(`--grace takes a number of seconds, got ${JSON.stringify(grace)}`);
  }
  if (spec.path === 'subnetpool create') {
    const prefixes = list('prefix');
    if (prefixes.length === 0) throw bad('subnetpool create needs at least one --prefix CIDR');
    for (const p of prefixes) if (!isCidr(p)) throw bad(`--prefix ${JSON.stringify(p)} is not a CIDR`);
    const len = str('default-prefixlen');
    if (len !== undefined && !(/^\d{1,3}$/.test(len) && Number(len) <= 128)) {
      throw bad(`--default-prefixlen takes a prefix length (0 to 128), got ${JSON.stringify(len)}`);
    }
  }
  if (spec.path === 'network create') {
    const net = str('neutron-net');
    if (net === undefined || net.trim() === '') throw bad('network create needs --neutron-net NAME|UUID');
    for (const [flag, key] of [
      ['-o', 'opt'],
      ['--ipam-opt', 'ipam-opt'],
    ] as const) {
      for (const kv of list(key))
        if (kv.indexOf('=') <= 0) throw bad(`${flag} takes KEY=VALUE, got ${JSON.stringify(kv)}`);
    }
    for (const r of list('ip-range')) if (!isCidr(r)) throw bad(`--ip-range ${JSON.stringify(r)} is not a CIDR`);
  }
}

const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'];

/**
 * Runs a validated command line. Each command's modules load only when it runs, so that --help, --version and
 * usage errors answer fast.
 */
async function run({ spec, values, positionals }: Invocation): Promise<number> {
  switch (spec.path) {
    case 'serve':
    case 'kuryr-server': {
      const { serve } = await import('./serve.ts');
      await serve(loadConfig(commonFlags(values, spec.path === 'serve' ? 'kuryr' : 'kuryr-server')));
      return 0;
    }
    case 'status': {
      const { collectStatus, renderStatus } = await import('./status.ts');
      const config = load(values);
      const report = await collectStatus(config);
      process.stdout.write(values.json ? `${JSON.stringify(report)}\n` : `${renderStatus(report, config)}\n`);
      return 0;
    }
    case 'doctor': {
      const { doctorCommand } = await import('./doctor.ts');
      return doctorCommand(values);
    }
    case 'backup':
    case 'restore': {
      const { backupCommand, renderBackup, restoreCommand } = await import('./backup.ts');
      const [file] = positionals as [string];
      const config = load(values);
      const info = spec.path === 'backup' ? backupCommand(config, file) : await restoreCommand(config, file);
      process.stdout.write(`${renderBackup(spec.path === 'backup' ? 'backed up to' : 'restored from', info)}\n`);
      return 0;
    }
    case 'gc': {
      const { gcCommand, renderGc } = await import('./gc.ts');
      const { silentLogger } = await import('../observability/logger.ts');
      const config = load(values);
      const report = await gcCommand(config, silentLogger(), {
        dryRun: values['dry-run'] === true,
        graceSeconds: values.grace === undefined ? 60 : Number(values.grace),
        dockerHost: config.dockerHost,
        force: values.force === true,
      });
      process.stdout.write(values.json ? `${JSON.stringify(report)}\n` : `${renderGc(report)}\n`);
      return report.actions.some((a) => a.result === 'failed') ? 1 : 0;
    }
    case 'subnetpool create': {
      const { createSubnetPool } = await import('./subnetpool.ts');
      const prefixlen = values['default-prefixlen'];
      const pool = await createSubnetPool(load(values), {
        name: positionals[0]!,
        prefixes: (values.prefix as string[] | undefined) ?? [],
        ...(prefixlen === undefined ? {} : { defaultPrefixlen: Number(prefixlen) }),
        shared: values.shared === true,
      });
      process.stdout.write(`${pool.id}\n`);
      return 0;
    }
    case 'subnetpool list': {
      const { listSubnetPools } = await import('./subnetpool.ts');
      const pools = await listSubnetPools(load(values));
      process.stdout.write(
        values.json
          ? `${JSON.stringify(pools)}\n`
          : pools.map((p) => `${p.id}  ${p.name}  ${p.prefixes.join(',')}  /${p.default_prefixlen}\n`).join(''),
      );
      return 0;
    }
    case 'subnetpool delete': {
      const { deleteSubnetPool } = await import('./subnetpool.ts');
      await deleteSubnetPool(load(values), positionals[0]!);
      return 0;
    }
    case 'network create': {
      const { createNetworkCommand, parseKeyValues } = await import('./network.ts');
      const result = await createNetworkCommand(load(values), {
        neutronNet: values['neutron-net'] as string,
        name: positionals[0],
        options: parseKeyValues((values.opt as string[] | undefined) ?? [], '-o'),
        ipamOptions: parseKeyValues((values['ipam-opt'] as string[] | undefined) ?? [], '--ipam-opt'),
        ipRanges: (values['ip-range'] as string[] | undefined) ?? [],
      });
      for (const w of result.warnings) process.stderr.write(`kuryr: warning: ${w}\n`);
      process.stdout.write(`${result.id}\n`);
      return 0;
    }
    case 'network rm': {
      const { removeNetworkCommand } = await import('./network.ts');
      const config = load(values);
      for (const name of positionals) {
        await removeNetworkCommand(config, name);
        process.stdout.write(`${name}\n`);
      }
      return 0;
    }
    default:
      throw new Error(`no runner for ${spec.path}`);
  }
}

/** The configuration of a one-shot command; its warnings (unknown options, ...) go to stderr, one line each. */
function load(values: ParsedValues): Config {
  const config = loadConfig(commonFlags(values));
  for (const w of config.warnings) process.stderr.write(`kuryr: warning: ${w}\n`);
  return config;
}

function print(text: string): number {
  process.stdout.write(text);
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof UsageError) {
      const help =
        err.command === ''
          ? 'kuryr --help'
          : err.command === 'kuryr-server'
            ? 'kuryr-server --help'
            : `kuryr ${err.command} --help`;
      process.stderr.write(`kuryr: ${err.message}\nSee '${help}'.\n`);
      process.exitCode = 2;
      return;
    }
    const text =
      err instanceof KuryrError ? `${err.code}: ${err.message}` : err instanceof Error ? err.message : String(err);
    process.stderr.write(`kuryr: ${text}\n`);
    process.exitCode = 1;
  },
);
