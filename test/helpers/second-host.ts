/**
 * The Neutron lab's second host (scripts/neutron/host2.sh): a network namespace with its own Neutron L2 agent
 * (`host` = its name), reached over veths. A test starts a private dockerd and a kuryr-ts there, with that host
 * name as `host_id`, so Neutron binds their ports to the second host and VXLAN carries the traffic between hosts.
 *
 *   const h2 = secondHost();
 *   describe('two hosts', { skip: h2.skip }, () => {
 *     const engine = await startPrivateDockerd({ netns: h2.netns });
 *     const plugin = await startPlugin({ ..., netns: h2.netns, extraArgs: ['--config', conf] });
 *     // conf: secondHostConf(h2, ...) — noauth Neutron through the management veth, host_id = h2.host
 *   });
 *
 * The description is $LAB_DIR/host2/host2.json, written last by `host2.sh start` and removed first by
 * `host2.sh stop`.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import * as z from '../../src/util/schema.ts';
import { NEUTRON_LAB_FILE } from './neutron-lab.ts';

export const SECOND_HOST_FILE =
  process.env.KURYR_HOST2_FILE || path.join(path.dirname(NEUTRON_LAB_FILE), 'host2', 'host2.json');

const fileSchema = z.object({
  netns: z.string(),
  host: z.string(),
  host_address: z.string(),
  address: z.string(),
  tunnel_ip: z.string(),
  lab_tunnel_ip: z.string(),
  neutron_url: z.string().nullable(),
  noauth_neutron_url: z.string().nullable(),
  auth_url: z.string().nullable(),
});

export interface SecondHost {
  /** Why the second host cannot be used, or false. */
  skip: string | false;
  /** The network namespace (/run/netns/<netns>). */
  netns: string;
  /** Its host name: the `host` of its L2 agent, the `host_id` its kuryr-ts must use. */
  host: string;
  /** The first host's address on the management veth (the lab's services are forwarded there). */
  hostAddress: string;
  /** The second host's address on the management veth. */
  address: string;
  /** VXLAN local_ip of the second host's agent. */
  tunnelIp: string;
  /** The noauth Neutron API as seen from inside the namespace (null when the lab serves no noauth API). */
  noauthNeutronUrl: string | null;
}

const HOW_TO_START = 'start it with `bash scripts/neutron/host2.sh` as root (after stack.sh)';

/** The second host as host2.sh describes it, or a skip reason. Does not contact anything. */
export function secondHost(file = SECOND_HOST_FILE): SecondHost {
  const none = (skip: string): SecondHost => ({
    skip,
    netns: '',
    host: '',
    hostAddress: '',
    address: '',
    tunnelIp: '',
    noauthNeutronUrl: null,
  });
  if (process.getuid?.() !== 0) return none('needs root');
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    return none(`no second host: ${file} is missing or unreadable (${HOW_TO_START})`);
  }
  const parsed = fileSchema.safeParse(json);
  if (!parsed.success) return none(`no second host: ${file} is malformed: ${z.describeIssues(parsed.issues)}`);
  const d = parsed.data;
  if (!existsSync(`/run/netns/${d.netns}`)) return none(`no second host: netns ${d.netns} is gone (${HOW_TO_START})`);
  return {
    skip: false,
    netns: d.netns,
    host: d.host,
    hostAddress: d.host_address,
    address: d.address,
    tunnelIp: d.tunnel_ip,
    noauthNeutronUrl: d.noauth_neutron_url,
  };
}

/** A kuryr.conf for a plugin on either host: noauth Neutron at `neutronUrl`, the given host ID and scope. */
export function hostConf(opts: { neutronUrl: string; hostId: string; scope?: 'local' | 'global' }): string {
  return [
    '[DEFAULT]',
    `capability_scope = ${opts.scope ?? 'local'}`,
    '[neutron]',
    'auth_type = none',
    `endpoint = ${opts.neutronUrl}`,
    '[kuryr_ts]',
    `host_id = ${opts.hostId}`,
    '',
  ].join('\n');
}
