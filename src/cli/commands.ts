/**
 * The commands of `kuryr`: each one's options, arguments and help text, in one table, so that parsing, the
 * per-command `--help` and the overview (`kuryr --help`) cannot disagree.
 */
import type { OptionSpecs } from './args.ts';

export interface CommandSpec {
  /** `status`, `subnetpool create`, ... */
  readonly path: string;
  /** what follows `kuryr <path>` in the usage line */
  readonly synopsis: string;
  readonly summary: string;
  readonly options: OptionSpecs;
  /** [flag text, description] of each option of `options`, in the help's order */
  readonly optionHelp: readonly (readonly [string, string])[];
  /** how many positional arguments the command takes, and what they are called */
  readonly args: { readonly min: number; readonly max: number; readonly name: string };
  /** what exit status 1 means for this command, when more than "it failed" */
  readonly exit1?: string;
  /** the program name of the usage line, when not `kuryr <path>` (`kuryr-server`) */
  readonly program?: string;
}

const DOCKER_HOST: readonly [string, string] = [
  '--docker-host URL',
  'the Docker Engine API to ask (default: $DOCKER_HOST, else unix:///var/run/docker.sock)',
];
const JSON_OUT = (what: string): readonly [string, string] => ['--json', `print ${what} as JSON`];

const SERVE: Omit<CommandSpec, 'path'> = {
  synopsis:
    '[--socket PATH | --listen HOST:PORT] [--log-level LEVEL] [--docker-host URL] [--metrics-listen HOST:PORT [--metrics-allow-remote]]',
  summary:
    'Run the Docker network and IPAM plugin (in the foreground, until SIGTERM or SIGINT). kuryr-server, the ' +
    "original's command, is the same; with only a log directory set, it logs to <log_dir>/kuryr-server.log.",
  options: {
    socket: { type: 'string' },
    listen: { type: 'string' },
    'metrics-listen': { type: 'string' },
    'docker-host': { type: 'string' },
    'metrics-allow-remote': { type: 'boolean' },
  },
  optionHelp: [
    ['--socket PATH', 'serve on this unix socket (default: /run/docker/plugins/<driver name>.sock)'],
    ['--listen HOST:PORT', 'serve over TCP instead, and write the plugin spec file (not with --socket)'],
    ['--log-level LEVEL', 'trace, debug, info, warn, error or fatal (default: info; -d: debug)'],
    DOCKER_HOST,
    ['--metrics-listen HOST:PORT', 'serve Prometheus metrics and /healthz over HTTP (a loopback address)'],
    ['--metrics-allow-remote', 'allow a --metrics-listen address that is not loopback (no authentication)'],
  ],
  args: { min: 0, max: 0, name: '' },
};

/** Every command, in the overview's order. `kuryr-server` is `serve` under the original's name. */
export const COMMANDS: readonly CommandSpec[] = [
  { path: 'serve', ...SERVE },
  { path: 'kuryr-server', program: 'kuryr-server', ...SERVE },
  {
    path: 'status',
    synopsis: '[--json]',
    summary:
      'Show the networks, subnets, pools and ports the backend holds (the embedded store is readable while serve runs).',
    options: { json: { type: 'boolean' } },
    optionHelp: [JSON_OUT("the resources (Neutron's field names)")],
    args: { min: 0, max: 0, name: '' },
  },
  {
    path: 'doctor',
    synopsis: '[--json] [--docker-host URL]',
    summary:
      "Check the set-up, each check with a verdict (ok, warn, fail, skip) and a hint: the configuration, the Docker engine, the plugin's socket or spec file and its name, the state directory and store, the default pools, Neutron (reachable, credentials, extensions), ip/nft/ovs-vsctl, kernel link types, and leftovers for kuryr gc. Every check: docs/troubleshooting.md.",
    options: { json: { type: 'boolean' }, 'docker-host': { type: 'string' } },
    optionHelp: [JSON_OUT('the report ({ok, counts, checks})'), DOCKER_HOST],
    args: { min: 0, max: 0, name: '' },
    exit1: 'a check failed',
  },
  {
    path: 'backup',
    synopsis: 'FILE',
    summary: 'Write a consistent copy of the embedded store to FILE (online: serve may keep running).',
    options: {},
    optionHelp: [],
    args: { min: 1, max: 1, name: 'FILE' },
  },
  {
    path: 'restore',
    synopsis: 'FILE',
    summary: 'Replace the embedded store by the backup FILE (refused while serve runs: stop it first).',
    options: {},
    optionHelp: [],
    args: { min: 1, max: 1, name: 'FILE' },
  },
  {
    path: 'gc',
    synopsis: '[--dry-run] [--json] [--grace SECONDS] [--docker-host URL] [--force]',
    summary:
      'Remove what this plugin created and nothing uses any more (ports, networks, subnets, pools, host devices and rules), as serve does at start-up and periodically.',
    options: {
      'dry-run': { type: 'boolean' },
      json: { type: 'boolean' },
      grace: { type: 'string' },
      'docker-host': { type: 'string' },
      force: { type: 'boolean' },
    },
    optionHelp: [
      ['--dry-run', 'list what would be removed, remove nothing'],
      JSON_OUT('the report'),
      ['--grace SECONDS', 'leave what was created less than SECONDS ago (default: 60)'],
      DOCKER_HOST,
      ['--force', "trust a Docker engine that knows none of the backend's Docker networks (else gc"],
      ['', 'suspects the wrong engine and removes nothing)'],
    ],
    args: { min: 0, max: 0, name: '' },
    exit1: 'an action failed',
  },
  {
    path: 'subnetpool create',
    synopsis: 'NAME --prefix CIDR [--prefix CIDR ...] [--default-prefixlen N] [--shared]',
    summary: 'Create a subnet pool (for -o/--ipam-opt neutron.pool.name=NAME); prints its ID. The name must be unused.',
    options: {
      prefix: { type: 'string', multiple: true },
      'default-prefixlen': { type: 'string' },
      shared: { type: 'boolean' },
    },
    optionHelp: [
      ['--prefix CIDR', 'a prefix of the pool (at least one; repeatable)'],
      ['--default-prefixlen N', 'the prefix length of a subnet taken from it (default: the longest prefix)'],
      ['--shared', 'shared with every project (Neutron)'],
    ],
    args: { min: 1, max: 1, name: 'NAME' },
  },
  {
    path: 'subnetpool list',
    synopsis: '[--json]',
    summary: 'List the subnet pools: ID, name, prefixes, default prefix length.',
    options: { json: { type: 'boolean' } },
    optionHelp: [JSON_OUT('the pools')],
    args: { min: 0, max: 0, name: '' },
  },
  {
    path: 'subnetpool delete',
    synopsis: 'NAME|ID',
    summary: 'Delete a subnet pool by name or ID (refused while subnets are allocated from it).',
    options: {},
    optionHelp: [],
    args: { min: 1, max: 1, name: 'NAME|ID' },
  },
  {
    path: 'network create',
    synopsis:
      '--neutron-net NAME|UUID [-o K=V ...] [--ipam-opt K=V ...] [--ip-range CIDR ...] [--docker-host URL] [DOCKER_NAME]',
    summary:
      "Make a Docker network of this driver on an existing Neutron network and its subnets; prints the Docker network's ID. DOCKER_NAME defaults to the Neutron network's name.",
    options: {
      'neutron-net': { type: 'string' },
      opt: { type: 'string', short: 'o', multiple: true },
      'ipam-opt': { type: 'string', multiple: true },
      'ip-range': { type: 'string', multiple: true },
      'docker-host': { type: 'string' },
    },
    optionHelp: [
      ['--neutron-net NAME|UUID', 'the Neutron network (required)'],
      ['-o, --opt K=V', "a driver option of docker network create's -o (repeatable)"],
      ['--ipam-opt K=V', 'an IPAM option (repeatable)'],
      ['--ip-range CIDR', 'allocate container addresses from this part of the subnet (one per IP version)'],
      DOCKER_HOST,
    ],
    args: { min: 0, max: 1, name: 'DOCKER_NAME' },
  },
  {
    path: 'network rm',
    synopsis: 'DOCKER_NAME [DOCKER_NAME ...] [--docker-host URL]',
    summary:
      'Remove Docker networks made by network create; the Neutron network and its subnets stay. Prints each name.',
    options: { 'docker-host': { type: 'string' } },
    optionHelp: [DOCKER_HOST],
    args: { min: 1, max: Number.POSITIVE_INFINITY, name: 'DOCKER_NAME' },
  },
];

/** Commands with actions (`subnetpool create`), and what each group is for. */
export const GROUPS: Readonly<Record<string, string>> = {
  subnetpool: 'Manage subnet pools (for -o/--ipam-opt neutron.pool.name=NAME).',
  network: 'Make Docker networks on existing Neutron networks (the Zun flow), and remove them.',
};

export function findCommand(path: string): CommandSpec | undefined {
  return COMMANDS.find((c) => c.path === path);
}

/** The actions of a group: `create`, `list`, `delete` of `subnetpool`. */
export function actionsOf(group: string): CommandSpec[] {
  return COMMANDS.filter((c) => c.path.startsWith(`${group} `));
}

/** The union of a group's actions' options (to find the action among them). */
export function groupOptions(group: string): OptionSpecs {
  return Object.assign({}, ...actionsOf(group).map((c) => c.options)) as OptionSpecs;
}

const COMMON_HELP: readonly (readonly [string, string])[] = [
  ['--config-file FILE', 'a kuryr.conf to read (repeatable: later files win); default: /etc/kuryr/kuryr.conf'],
  ['', 'or /etc/kuryr.conf, the first that exists'],
  ['--config-dir DIR', 'also read DIR/*.conf, sorted (repeatable, in order with --config-file);'],
  ['', 'default: /etc/kuryr/kuryr.conf.d if present'],
  ['--config FILE', 'same as --config-file FILE'],
  ['-d, --debug', 'log at debug level ([DEFAULT] debug)'],
  ['--log-file FILE', 'log to this file, as oslo.log ([DEFAULT] log_file)'],
  ['--log-dir DIR', 'log to DIR/<program>.log ([DEFAULT] log_dir)'],
  ['--backend embedded|neutron', 'where networks live (default: embedded)'],
  ['--driver-name NAME', 'network and IPAM driver name (default: kuryr)'],
  ['--state-dir DIR', 'embedded store directory (default: /var/lib/kuryr)'],
  ['-h, --help', "print this command's help"],
  ['--version', 'print the version'],
];

function table(rows: readonly (readonly [string, string])[]): string {
  return rows
    .map(([flag, text]) => `  ${flag.padEnd(30)}${flag.length >= 30 ? `\n  ${''.padEnd(30)}` : ''}${text}\n`)
    .join('');
}

function wrap(text: string, width = 100): string {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line !== '' && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line === '' ? word : `${line} ${word}`;
  }
  return [...lines, line].join('\n');
}

const EXIT_STATUS = (exit1: string) =>
  `${wrap(
    `Exit status: 0 done; 1 ${exit1}; 2 usage error (unknown command or option, a missing or malformed argument): one line on stderr and a pointer to the command's --help.`,
  )}\n`;

const COMMON_SECTION = `Common options (before or after the command):\n${table(COMMON_HELP)}`;

function usageLine(spec: CommandSpec): string {
  const name = spec.program ?? `kuryr ${spec.path}`;
  return `${name} ${spec.synopsis === '' ? '' : `${spec.synopsis} `}[common options]`;
}

/** `kuryr <command> --help`. */
export function commandHelp(spec: CommandSpec): string {
  const options = spec.optionHelp.length === 0 ? '' : `Options:\n${table(spec.optionHelp)}\n`;
  return `Usage: ${usageLine(spec)}\n\n${wrap(spec.summary)}\n\n${options}${COMMON_SECTION}\n${EXIT_STATUS(
    spec.exit1 ?? 'it failed (the message says why)',
  )}`;
}

/** `kuryr subnetpool --help`: the actions, each with its usage. */
export function groupHelp(group: string): string {
  const actions = actionsOf(group);
  const names = actions.map((a) => a.path.slice(group.length + 1)).join('|');
  const list = actions.map((a) => `  ${usageLine(a)}\n${wrap(a.summary, 96).replace(/^/gm, '      ')}\n`).join('');
  return `Usage: kuryr ${group} ${names} ...\n\n${GROUPS[group]}\n\n${list}\nRun 'kuryr ${group} <action> --help' for an action's options.\n\n${COMMON_SECTION}\n${EXIT_STATUS(
    'it failed (the message says why)',
  )}`;
}

/** `kuryr --help`: every command, one line of usage each. */
export function overviewHelp(): string {
  const lines = COMMANDS.filter((c) => c.program === undefined).map((c) =>
    wrap(`kuryr ${c.path} ${c.synopsis}`.trimEnd(), 108)
      .replace(/^/gm, '  ')
      .replace(/\n {2}/g, '\n        '),
  );
  return `Usage: kuryr <command> [options]        (also: kuryr-server [options], the original's command: serve)

Commands:
${lines.map((l) => `${l}\n`).join('')}  kuryr help <command>
  kuryr --version

Run 'kuryr <command> --help' (or 'kuryr help <command>') for what a command does and its options.

${COMMON_SECTION}
${EXIT_STATUS('the command failed (doctor: a check failed, gc: an action failed)')}`;
}
