/**
 * `kuryr doctor [--json] [--docker-host URL]` with the common options: checks the Docker engine, the plugin's
 * registration, the configuration, the backend, the host and leftovers (src/doctor/), prints one verdict per
 * check with a hint, and exits 1 when any check fails. A configuration error is a failed check, not a crash.
 */
import { runDoctor, renderDoctor } from '../doctor/run.ts';
import { commonFlags, parseCommand } from './args.ts';

export const DOCTOR_USAGE = `Usage: kuryr doctor [--json] [--docker-host URL] [common options]

Checks, each with a verdict (ok, warn, fail, skip) and a hint: the configuration, the Docker engine, the
plugin's socket or spec file and its name, the state directory and store, the default pools, Neutron
(reachable, credentials, extensions), ip/nft/ovs-vsctl and the OVS bridge, kernel link types, the host's
forwarding settings (ip_forward, the FORWARD policy, br_netfilter, route_localnet), what the port driver
needs of the kernel, and leftovers for kuryr gc. Exits 1 when a check fails. Every check:
docs/troubleshooting.md.
`;

export async function doctorCommand(args: readonly string[]): Promise<number> {
  const { values } = parseCommand(args, { json: { type: 'boolean' }, 'docker-host': { type: 'string' } });
  if (values.help) {
    process.stdout.write(DOCTOR_USAGE);
    return 0;
  }
  const report = await runDoctor({ flags: commonFlags(values) });
  process.stdout.write(
    values.json ? `${JSON.stringify(report)}\n` : `${renderDoctor(report, process.stdout.isTTY === true)}\n`,
  );
  return report.ok ? 0 : 1;
}
