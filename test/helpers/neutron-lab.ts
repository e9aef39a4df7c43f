/**
 * The real OpenStack Neutron lab (scripts/neutron/stack.sh) as the tests see it: the endpoints and credentials
 * the stack wrote to its JSON file, after a quick check that each API answers.
 *
 *   const lab = await neutronLab();
 *   describe('against a real Neutron (keystone)', { skip: lab.skip.keystone }, () => {
 *     // lab.keystone!.authUrl, .username, .password, .projectName, ... , .neutronUrl
 *   });
 *   describe('against a real Neutron (noauth)', { skip: lab.skip.noauth }, () => {
 *     // lab.noauth!.neutronUrl
 *   });
 *
 * The file is $KURYR_NEUTRON_LAB, default /var/lib/kuryr-neutron-lab/kuryr-test.json (the Linux bridge lab); the
 * ML2/OVN lab (scripts/ovn/stack.sh) writes /var/lib/kuryr-ovn-lab/kuryr-test.json in the same format, plus
 * `mechanism_driver`, `vif_type` and `bridge`: tests branch on `lab.mechanismDriver` / `lab.vifType` where the
 * labs differ. Each stack.sh writes its file last, once everything answers, and stack-stop.sh removes it first. KURYR_WITH_NEUTRON=0 turns the lab off for the tests.
 * One stack can serve both modes at once (AUTH=both, the default: Keystone on :9696, noauth on :9697).
 */
import { readFileSync } from 'node:fs';
import * as z from '../../src/util/schema.ts';
import type { NeutronApi } from '../../src/neutron/api.ts';

export const NEUTRON_LAB_FILE = process.env.KURYR_NEUTRON_LAB || '/var/lib/kuryr-neutron-lab/kuryr-test.json';
/** The ML2/OVN lab's file (scripts/ovn/stack.sh), whatever KURYR_NEUTRON_LAB says: $KURYR_OVN_LAB or the default. */
export const OVN_LAB_FILE = process.env.KURYR_OVN_LAB || '/var/lib/kuryr-ovn-lab/kuryr-test.json';

/** Keystone v3 password credentials of the lab's `kuryr` user (role admin), shaped like `PasswordAuthOptions`. */
export interface NeutronLabKeystone {
  /** Versioned, e.g. http://127.0.0.1:5000/v3 */
  authUrl: string;
  username: string;
  password: string;
  projectName: string;
  userDomainName: string;
  projectDomainName: string;
  regionName: string;
  /** The Neutron server with auth_strategy = keystone (also in the token's catalog, type `network`). */
  neutronUrl: string;
}

/** A Neutron server with auth_strategy = noauth: no token; resources get project_id `fake_project_id`. */
export interface NeutronLabNoauth {
  neutronUrl: string;
}

export interface NeutronLab {
  /** At least one auth mode answers. */
  available: boolean;
  /** Why neither mode is usable (when `available` is false). */
  reason?: string;
  /** Present when the Keystone-protected server and Keystone answer. */
  keystone?: NeutronLabKeystone;
  /** Present when the noauth server answers. */
  noauth?: NeutronLabNoauth;
  /** Ready-made `skip` options for node:test: false, or the reason the mode is not usable. */
  skip: { keystone: string | false; noauth: string | false };
  /** The host name the lab's agents report (`binding:host_id` of ports they serve). */
  host?: string;
  /** Provider network types this kernel supports: flat and vxlan; vlan only with 802.1q. */
  networkTypes?: string[];
  /** The physnet of flat (and vlan) provider networks, `physnet1`. */
  physicalNetwork?: string;
  /** A neutron-dhcp-agent runs: subnets with enable_dhcp get a `network:dhcp` port. */
  dhcpAgent?: boolean;
  /**
   * The lab's ML2 mechanism driver: `linuxbridge` (scripts/neutron, agents, `brq…` bridges, VXLAN) or `ovn`
   * (scripts/ovn: no L2 or DHCP agent, ports plugged into `br-int`, OVN's own DHCP, Geneve).
   */
  mechanismDriver: 'linuxbridge' | 'ovn';
  /** `binding:vif_type` of the ports the lab binds: `bridge` (linuxbridge) or `ovs` (OVN). */
  vifType: 'bridge' | 'ovs';
  /** The Open vSwitch integration bridge ports are plugged into (`ovs` labs only). */
  ovsBridge?: string;
  /** The network type of tenant networks: `vxlan` (linuxbridge) or `geneve` (OVN). */
  tenantNetworkType?: string;
  /** The JSON file read. */
  file: string;
}

const keystoneSchema = z.object({
  auth_url: z.string(),
  username: z.string(),
  password: z.string(),
  project_name: z.string(),
  user_domain_name: z.string(),
  project_domain_name: z.string(),
  region_name: z.string(),
  neutron_url: z.string(),
});

/** kuryr-test.json as written by scripts/neutron/stack.sh (only the fields read here). */
const labFileSchema = z.object({
  auth: z.picklist(['keystone', 'noauth']),
  neutron_url: z.string(),
  keystone: keystoneSchema.nullable().optional(),
  noauth: z.object({ neutron_url: z.string() }).nullable().optional(),
  host: z.string().optional(),
  network_types: z.array(z.string()).optional(),
  physical_network: z.string().optional(),
  dhcp_agent: z.boolean().optional(),
  tenant_network_type: z.string().optional(),
  // scripts/ovn/stack.sh only (the Linux bridge lab's file predates them: absent means linuxbridge)
  mechanism_driver: z.picklist(['linuxbridge', 'ovn']).optional(),
  vif_type: z.picklist(['bridge', 'ovs']).optional(),
  bridge: z.string().optional(),
});
export type NeutronLabFile = z.Infer<typeof labFileSchema>;

const howToStart = (file: string) =>
  `start it with \`bash ${file.includes('ovn') ? 'scripts/ovn' : 'scripts/neutron'}/stack.sh\` as root`;

function unavailable(reason: string, file: string): NeutronLab {
  return {
    available: false,
    reason,
    skip: { keystone: reason, noauth: reason },
    mechanismDriver: 'linuxbridge',
    vifType: 'bridge',
    file,
  };
}

/** The lab file, parsed and checked, or the reason it cannot be used. Does not contact the lab. */
export function readNeutronLabFile(file = NEUTRON_LAB_FILE): NeutronLabFile | { error: string } {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { error: `no Neutron lab: ${file} does not exist (${howToStart(file)})` };
    return { error: `no Neutron lab: cannot read ${file}: ${code ?? String(err)}` };
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { error: `no Neutron lab: ${file} is not JSON` };
  }
  const parsed = labFileSchema.safeParse(json);
  if (!parsed.success) return { error: `no Neutron lab: ${file} is malformed: ${z.describeIssues(parsed.issues)}` };
  return parsed.data;
}

/** Why `url` does not answer a GET with 2xx within `timeoutMs`, or undefined when it does. */
async function notAnswering(url: string, timeoutMs: number): Promise<string | undefined> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    await res.arrayBuffer();
    return res.ok ? undefined : `GET ${url} answered ${res.status}`;
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause?.code;
    return `GET ${url} failed: ${cause ?? (err as Error).message}`;
  }
}

let cached: Promise<NeutronLab> | undefined;

/**
 * The lab as described by its JSON file, with each auth mode present only when its API answers `GET /`
 * (Neutron's version list, no token needed) and, for Keystone, `GET <auth_url>`. Memoised per process
 * (pass `{ fresh: true }` to look again).
 */
export function neutronLab(opts: { fresh?: boolean; timeoutMs?: number } = {}): Promise<NeutronLab> {
  if (!cached || opts.fresh) cached = neutronLabAt(NEUTRON_LAB_FILE, opts.timeoutMs);
  return cached;
}

/** The lab described by `path` (e.g. `OVN_LAB_FILE`, for a bench column), probed now. */
export async function neutronLabAt(path: string, timeoutMs = 5_000): Promise<NeutronLab> {
  if (process.env.KURYR_WITH_NEUTRON === '0') return unavailable('Neutron lab turned off (KURYR_WITH_NEUTRON=0)', path);
  const file = readNeutronLabFile(path);
  if ('error' in file) return unavailable(file.error, path);

  const lab: NeutronLab = {
    available: false,
    skip: { keystone: false, noauth: false },
    file: path,
    mechanismDriver: file.mechanism_driver ?? 'linuxbridge',
    vifType: file.vif_type ?? (file.mechanism_driver === 'ovn' ? 'ovs' : 'bridge'),
    ...(file.bridge !== undefined && { ovsBridge: file.bridge }),
    ...(file.tenant_network_type !== undefined && { tenantNetworkType: file.tenant_network_type }),
    ...(file.host !== undefined && { host: file.host }),
    ...(file.network_types !== undefined && { networkTypes: file.network_types }),
    ...(file.physical_network !== undefined && { physicalNetwork: file.physical_network }),
    ...(file.dhcp_agent !== undefined && { dhcpAgent: file.dhcp_agent }),
  };
  const [ksDown, naDown] = await Promise.all([
    file.keystone
      ? Promise.all([
          notAnswering(`${file.keystone.neutron_url}/`, timeoutMs),
          notAnswering(file.keystone.auth_url, timeoutMs),
        ]).then(([a, b]) => a ?? b)
      : Promise.resolve(`the lab serves no Keystone mode (started with AUTH=${file.auth}; use AUTH=both)`),
    file.noauth
      ? notAnswering(`${file.noauth.neutron_url}/`, timeoutMs)
      : Promise.resolve(`the lab serves no noauth mode (started with AUTH=${file.auth}; use AUTH=both)`),
  ]);
  if (file.keystone && ksDown === undefined) {
    const k = file.keystone;
    lab.keystone = {
      authUrl: k.auth_url,
      username: k.username,
      password: k.password,
      projectName: k.project_name,
      userDomainName: k.user_domain_name,
      projectDomainName: k.project_domain_name,
      regionName: k.region_name,
      neutronUrl: k.neutron_url,
    };
  } else {
    lab.skip.keystone = `Neutron lab (keystone) not usable: ${ksDown}`;
  }
  if (file.noauth && naDown === undefined) {
    lab.noauth = { neutronUrl: file.noauth.neutron_url };
  } else {
    lab.skip.noauth = `Neutron lab (noauth) not usable: ${naDown}`;
  }
  lab.available = lab.keystone !== undefined || lab.noauth !== undefined;
  if (!lab.available) lab.reason = `${lab.skip.keystone}; ${lab.skip.noauth} (${howToStart(path)})`;
  return lab;
}

/**
 * The `[neutron]` section of a kuryr.conf that points kuryr-ts at the lab in one mode
 * (option names as in src/neutron/http/config.ts).
 */
export function neutronConfSection(lab: NeutronLab, mode: 'keystone' | 'noauth'): string {
  if (mode === 'noauth') {
    if (!lab.noauth) throw new Error(`no noauth mode: ${lab.skip.noauth}`);
    return `[neutron]\nauth_type = none\nendpoint = ${lab.noauth.neutronUrl}\n`;
  }
  const k = lab.keystone;
  if (!k) throw new Error(`no keystone mode: ${lab.skip.keystone}`);
  return [
    '[neutron]',
    'auth_type = password',
    `auth_url = ${k.authUrl}`,
    `username = ${k.username}`,
    `password = ${k.password}`,
    `project_name = ${k.projectName}`,
    `user_domain_name = ${k.userDomainName}`,
    `project_domain_name = ${k.projectDomainName}`,
    `region_name = ${k.regionName}`,
    '',
  ].join('\n');
}

/** IDs of everything Neutron holds that a test could leave behind, sorted, by kind. */
export type NeutronSnapshot = Record<'networks' | 'subnets' | 'subnetpools' | 'ports' | 'security_groups', string[]>;

/** What Neutron holds now (compare a snapshot taken before a test with one taken after its teardown). */
export async function neutronSnapshot(
  neutron: Pick<NeutronApi, 'listNetworks' | 'listSubnets' | 'listSubnetPools' | 'listPorts' | 'listSecurityGroups'>,
): Promise<NeutronSnapshot> {
  const ids = (list: { id: string }[]) => list.map((r) => r.id).sort();
  return {
    networks: ids(await neutron.listNetworks({ fields: ['id'] })),
    subnets: ids(await neutron.listSubnets({ fields: ['id'] })),
    subnetpools: ids(await neutron.listSubnetPools({ fields: ['id'] })),
    ports: ids(await neutron.listPorts({ fields: ['id'] })),
    // A project's `default` group is created by Neutron itself on first use: not ours.
    security_groups: ids(
      (await neutron.listSecurityGroups({ fields: ['id', 'name'] })).filter((g) => g.name !== 'default'),
    ),
  };
}
