/**
 * `kuryr status [--json]`: what the backend holds. Reads the store while `serve` runs (SQLite WAL readers
 * do not block the writer). `--json` prints one object with Neutron's field names.
 */
import { openBackend } from '../app.ts';
import type { Config } from '../config/config.ts';
import type { Network, Port, Subnet, SubnetPool } from '../neutron/types.ts';
import { dockerIdOfTags, Marks } from '../driver/marks.ts';

export interface StatusReport {
  networks: Network[];
  subnets: Subnet[];
  subnetpools: SubnetPool[];
  ports: Port[];
}

/** Everything the backend holds that status shows. */
export async function collectStatus(config: Config): Promise<StatusReport> {
  const backend = await openBackend(config);
  try {
    const [networks, subnets, subnetpools, ports] = await Promise.all([
      backend.neutron.listNetworks(),
      backend.neutron.listSubnets(),
      backend.neutron.listSubnetPools(),
      backend.neutron.listPorts(),
    ]);
    return { networks, subnets, subnetpools, ports };
  } finally {
    await backend.close();
  }
}

/** Human-readable rendering of a status report. */
export function renderStatus(report: StatusReport, config: Config): string {
  const lines: string[] = [`backend: ${config.backend} (${config.stateDir})`, ''];
  // Tags, or the names and device IDs a Neutron without the tag extension leaves (driver/marks.ts).
  const byName = new Marks({ tag: false, tagExt: false });
  const short = (id: string | undefined) => id?.slice(0, 12) ?? '-';
  const networkOf = (n: Network) => short(dockerIdOfTags(n.tags) ?? byName.dockerIdOfNetwork(n));
  const endpointOf = (p: Port) => short(dockerIdOfTags(p.tags) ?? byName.endpointIdOfPort(p));
  lines.push(`networks: ${report.networks.length}`);
  for (const n of report.networks) {
    lines.push(`  ${n.id}  ${n.name}  docker=${networkOf(n)}  mtu=${n.mtu}  subnets=${n.subnets.length}`);
  }
  lines.push(`subnets: ${report.subnets.length}`);
  for (const s of report.subnets) {
    lines.push(
      `  ${s.id}  ${s.cidr}  gateway=${s.gateway_ip ?? '-'}  network=${s.network_id}  pool=${s.subnetpool_id ?? '-'}`,
    );
  }
  lines.push(`subnet pools: ${report.subnetpools.length}`);
  for (const p of report.subnetpools) {
    lines.push(`  ${p.id}  ${p.name}  ${p.prefixes.join(',')}  /${p.default_prefixlen}`);
  }
  lines.push(`ports: ${report.ports.length}`);
  for (const p of report.ports) {
    const ips = p.fixed_ips.map((f) => f.ip_address).join(',');
    lines.push(
      `  ${p.id}  ${ips}  ${p.mac_address}  ${p.status}  owner=${p.device_owner || '-'}  endpoint=${endpointOf(p)}`,
    );
  }
  return lines.join('\n');
}
