#!/usr/bin/env node
/**
 * The `kuryr` command: `serve` (also `kuryr-server`, the original's command, via bin/kuryr-server), `status`,
 * `--version`, ... Thin: parses flags, loads the configuration, runs one
 * subcommand, and turns errors into one line on stderr and a non-zero exit code.
 */
import { readFileSync } from 'node:fs';
import type { Config } from '../config/config.ts';
import { loadConfig } from '../config/load.ts';
import { KuryrError } from '../errors.ts';
import { commonFlags, type ParsedValues, parseCommand } from './args.ts';
import { silentLogger } from '../observability/logger.ts';
import { backupCommand, renderBackup, restoreCommand } from './backup.ts';
import { gcCommand, renderGc } from './gc.ts';
import { createNetworkCommand, parseKeyValues, removeNetworkCommand } from './network.ts';
import { serve } from './serve.ts';
import { collectStatus, renderStatus } from './status.ts';
import { createSubnetPool, deleteSubnetPool, listSubnetPools } from './subnetpool.ts';

const USAGE = `Usage: kuryr <command> [options]

Commands:
  serve [--socket PATH | --listen HOST:PORT] [--log-level LEVEL] [--docker-host URL]
        [--metrics-listen 127.0.0.1:PORT [--metrics-allow-remote]]
                      run the Docker network + IPAM plugin; optionally serve Prometheus
                      metrics and /healthz over HTTP (loopback only unless allowed)
                      (kuryr-server [OPTIONS], the original's command, is the same; its
                      log file is <log_dir>/kuryr-server.log)
  status [--json]     show the networks, subnets, pools and ports the backend holds
  doctor [--json] [--docker-host URL]
                      check the set-up (Docker, plugin, config, backend, host); exit 1 on a failure
  backup FILE         consistent copy of the embedded store (online)
  restore FILE
                      replace the embedded store by a backup (stop serve first)
  gc [--dry-run] [--json] [--grace SECONDS] [--docker-host URL] [--force]
                      remove what this plugin created and nothing uses any more
  subnetpool create NAME --prefix CIDR [--prefix CIDR ...] [--default-prefixlen N] [--shared]
  subnetpool list [--json]
  subnetpool delete NAME|ID
                      manage subnet pools (for -o/--ipam-opt neutron.pool.name=NAME)
  network create --neutron-net NAME|UUID [-o K=V ...] [--ipam-opt K=V ...] [--ip-range CIDR]
                 [--docker-host URL] [DOCKER_NAME]
                      make a Docker network of this driver on an existing Neutron network
                      (default DOCKER_NAME: the Neutron network's name); prints its ID
  network rm DOCKER_NAME [--docker-host URL]
                      remove it again (the Neutron network and its subnets stay)

Common options:
  --config-file FILE            a kuryr.conf to read (repeatable: later files win); default: the
                                first of /etc/kuryr/kuryr.conf, /etc/kuryr.conf that exists
  --config-dir DIR              also read DIR/*.conf, sorted (repeatable, in order with
                                --config-file); default: /etc/kuryr/kuryr.conf.d if present
  --config FILE                 same as --config-file FILE
  -d, --debug                   log at debug level ([DEFAULT] debug)
  --log-file FILE, --log-dir DIR
                                log to a file, as oslo.log ([DEFAULT] log_file, log_dir)
  --backend embedded|neutron    where networks live (default: embedded)
  --driver-name NAME            network and IPAM driver name (default: kuryr)
  --state-dir DIR               embedded store directory (default: /var/lib/kuryr)
  --version                     print the version
`;

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === '--version' || command === 'version') {
    process.stdout.write(`kuryr-ts ${version()}\n`);
    return 0;
  }
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(USAGE);
    return command === undefined ? 2 : 0;
  }
  switch (command) {
    case 'serve':
      return serveCommand(rest, 'kuryr');
    case 'kuryr-server':
      return serveCommand(rest, 'kuryr-server');
    case 'status': {
      const { values } = parseCommand(rest, { json: { type: 'boolean' } });
      if (values.help) return help();
      const config = load(values);
      const report = await collectStatus(config);
      process.stdout.write(values.json ? `${JSON.stringify(report)}\n` : `${renderStatus(report, config)}\n`);
      return 0;
    }
    case 'subnetpool':
      return subnetpoolCommand(rest);
    case 'doctor':
      // Loaded only here: doctor's checks (and the Neutron HTTP client) are no part of serve's memory.
      return (await import('./doctor.ts')).doctorCommand(rest);
    case 'network':
      return networkCommand(rest);
    case 'backup':
    case 'restore': {
      const { values, positionals } = parseCommand(rest, {});
      if (values.help) return help();
      const [file] = positionals;
      if (file === undefined) throw new KuryrError('KURYR_ERR_CONFIG', `${command} needs a FILE`);
      const config = load(values);
      const info = command === 'backup' ? backupCommand(config, file) : await restoreCommand(config, file);
      process.stdout.write(`${renderBackup(command === 'backup' ? 'backed up to' : 'restored from', info)}\n`);
      return 0;
    }
    case 'gc': {
      const { values } = parseCommand(rest, {
        'dry-run': { type: 'boolean' },
        json: { type: 'boolean' },
        grace: { type: 'string' },
        'docker-host': { type: 'string' },
        force: { type: 'boolean' },
      });
      if (values.help) return help();
      const config = load(values);
      const grace = values.grace === undefined ? 60 : Number(values.grace);
      if (!Number.isFinite(grace) || grace < 0)
        throw new KuryrError('KURYR_ERR_CONFIG', '--grace takes a number of seconds');
      const report = await gcCommand(config, silentLogger(), {
        dryRun: values['dry-run'] === true,
        graceSeconds: grace,
        dockerHost: config.dockerHost,
        force: values.force === true,
      });
      process.stdout.write(values.json ? `${JSON.stringify(report)}\n` : `${renderGc(report)}\n`);
      return report.actions.some((a) => a.result === 'failed') ? 1 : 0;
    }
    default:
      process.stderr.write(`kuryr: unknown command ${JSON.stringify(command)}\n\n${USAGE}`);
      return 2;
  }
}

/** `kuryr serve` and `kuryr-server`: the same, but for the log file's name (`<log_dir>/<program>.log`). */
async function serveCommand(args: readonly string[], program: string): Promise<number> {
  const { values } = parseCommand(args, {
    socket: { type: 'string' },
    listen: { type: 'string' },
    'metrics-listen': { type: 'string' },
    'docker-host': { type: 'string' },
    'metrics-allow-remote': { type: 'boolean' },
  });
  if (values.help) return help();
  if (values.socket !== undefined && values.listen !== undefined) {
    throw new KuryrError('KURYR_ERR_CONFIG', '--socket and --listen are mutually exclusive');
  }
  await serve(loadConfig(commonFlags(values, program)));
  return 0;
}

async function subnetpoolCommand(args: readonly string[]): Promise<number> {
  const [action, ...rest] = args;
  const { values, positionals } = parseCommand(rest, {
    prefix: { type: 'string', multiple: true },
    'default-prefixlen': { type: 'string' },
    shared: { type: 'boolean' },
    json: { type: 'boolean' },
  });
  if (values.help) return help();
  const config = load(values);
  if (action === 'create') {
    const [name] = positionals;
    if (name === undefined) throw new KuryrError('KURYR_ERR_CONFIG', 'subnetpool create needs a NAME');
    const prefixlen = values['default-prefixlen'];
    if (prefixlen !== undefined && !/^\d{1,3}$/.test(String(prefixlen))) {
      throw new KuryrError('KURYR_ERR_CONFIG', '--default-prefixlen must be a number');
    }
    const pool = await createSubnetPool(config, {
      name,
      prefixes: (values.prefix as string[] | undefined) ?? [],
      ...(prefixlen === undefined ? {} : { defaultPrefixlen: Number(prefixlen) }),
      shared: values.shared === true,
    });
    process.stdout.write(`${pool.id}\n`);
    return 0;
  }
  if (action === 'list') {
    const pools = await listSubnetPools(config);
    process.stdout.write(
      values.json
        ? `${JSON.stringify(pools)}\n`
        : pools.map((p) => `${p.id}  ${p.name}  ${p.prefixes.join(',')}  /${p.default_prefixlen}\n`).join(''),
    );
    return 0;
  }
  if (action === 'delete') {
    const [target] = positionals;
    if (target === undefined) throw new KuryrError('KURYR_ERR_CONFIG', 'subnetpool delete needs a NAME or ID');
    await deleteSubnetPool(config, target);
    return 0;
  }
  throw new KuryrError('KURYR_ERR_CONFIG', 'usage: kuryr subnetpool create|list|delete ...');
}

async function networkCommand(args: readonly string[]): Promise<number> {
  const [action, ...rest] = args;
  if (action === undefined || action === '--help' || action === '-h') return help();
  const { values, positionals } = parseCommand(rest, {
    'neutron-net': { type: 'string' },
    opt: { type: 'string', short: 'o', multiple: true },
    'ipam-opt': { type: 'string', multiple: true },
    'ip-range': { type: 'string', multiple: true },
    'docker-host': { type: 'string' },
  });
  if (values.help) return help();
  const config = load(values);
  if (action === 'create') {
    const neutronNet = values['neutron-net'];
    if (typeof neutronNet !== 'string') throw new KuryrError('KURYR_ERR_CONFIG', 'network create needs --neutron-net');
    if (positionals.length > 1) throw new KuryrError('KURYR_ERR_CONFIG', 'network create takes one DOCKER_NAME');
    const result = await createNetworkCommand(config, {
      neutronNet,
      name: positionals[0],
      options: parseKeyValues((values.opt as string[] | undefined) ?? [], '-o'),
      ipamOptions: parseKeyValues((values['ipam-opt'] as string[] | undefined) ?? [], '--ipam-opt'),
      ipRanges: (values['ip-range'] as string[] | undefined) ?? [],
    });
    for (const w of result.warnings) process.stderr.write(`kuryr: warning: ${w}\n`);
    process.stdout.write(`${result.id}\n`);
    return 0;
  }
  if (action === 'rm') {
    if (positionals.length === 0) throw new KuryrError('KURYR_ERR_CONFIG', 'network rm needs a DOCKER_NAME');
    for (const name of positionals) {
      await removeNetworkCommand(config, name);
      process.stdout.write(`${name}\n`);
    }
    return 0;
  }
  throw new KuryrError('KURYR_ERR_CONFIG', 'usage: kuryr network create|rm ...');
}

/** The configuration of a one-shot command; its warnings (unknown options, ...) go to stderr, one line each. */
function load(values: ParsedValues): Config {
  const config = loadConfig(commonFlags(values));
  for (const w of config.warnings) process.stderr.write(`kuryr: warning: ${w}\n`);
  return config;
}

function help(): number {
  process.stdout.write(USAGE);
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    const text =
      err instanceof KuryrError ? `${err.code}: ${err.message}` : err instanceof Error ? err.message : String(err);
    process.stderr.write(`kuryr: ${text}\n`);
    process.exitCode = 1;
  },
);
