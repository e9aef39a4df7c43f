/**
 * The backends, for the composition root (app.ts, which re-exports them): opens the Neutron API the configuration
 * names and, for the embedded backend, plays the parts Neutron's operator and agent would (default pools, one
 * bridge per network).
 */
import fs from 'node:fs';
import path from 'node:path';
import type { HostNetworkAgent } from './binding/binder.ts';
import type { Config } from './config/config.ts';
import type { Logger } from './observability/logger.ts';
import { FULL_TAG_SUPPORT, type TagSupport } from './driver/marks.ts';
import { hostNetworkSpec } from './driver/embedded-options.ts';
import { gatewaysOf } from './driver/network.ts';
import { LOWER_HALF_PREFIX } from './driver/tags.ts';
import { fail } from './errors.ts';
import type { NeutronApi } from './neutron/api.ts';
import { cachingNeutron } from './neutron/caching.ts';
import { openEmbeddedNeutron } from './neutron/embedded/store.ts';
import type { NeutronHttpClient } from './neutron/http/index.ts';

export interface OpenBackend {
  /** The backend, behind the cache (neutron/caching.ts) when opened here: serve, gc and the CLI go through it. */
  neutron: NeutronApi;
  /**
   * The backend itself, undecorated: for the port drivers of containers in VMs (driver/port-drivers), whose calls
   * only the HTTP client has (trunk subports, `If-Match` updates of the VM's port) and which read the VM's port
   * afresh every time (another process may change its pairs).
   */
  bare: NeutronApi;
  /** Releases the backend (closes the store). */
  close(): Promise<void>;
}

export interface OpenBackendOptions {
  /** Wraps the bare backend before the cache (e.g. `countingNeutron`, so that only real calls are counted). */
  observe?: (api: NeutronApi) => NeutronApi;
}

/** File of the embedded store inside the state directory. */
export function embeddedStorePath(stateDir: string): string {
  return path.join(stateDir, 'kuryr.db');
}

/** Opens the configured backend, behind the cache. */
export async function openBackend(config: Config, opts: OpenBackendOptions = {}): Promise<OpenBackend> {
  const opened = await openBareBackend(config);
  const observed = opts.observe === undefined ? opened.neutron : opts.observe(opened.neutron);
  return { neutron: cachingNeutron(observed), bare: opened.neutron, close: opened.close };
}

async function openBareBackend(config: Config): Promise<{ neutron: NeutronApi; close(): Promise<void> }> {
  if (config.backend === 'neutron') {
    // Loaded only for this backend: the embedded one needs neither the HTTP client nor node:https/tls.
    const { openNeutronHttp } = await import('./neutron/http/index.ts');
    let client: NeutronHttpClient;
    try {
      client = openNeutronHttp(config.sections.neutron ?? {}, { lookupSection: (name) => config.sections[name] });
    } catch (err) {
      // The client's errors name the section and key; add the file.
      throw fail.config(`${config.configFile ?? 'configuration'}: ${(err as Error).message}`);
    }
    return { neutron: client, close: () => client.close() };
  }
  fs.mkdirSync(config.stateDir, { recursive: true, mode: 0o700 });
  const store = openEmbeddedNeutron({ path: embeddedStorePath(config.stateDir) });
  return { neutron: store, close: async () => store.close() };
}

/**
 * Which resources take tags (kuryr's `tag` and `tag_ext` flags): all of them in the embedded store; a real
 * Neutron is asked once (retried while it starts, `attempts` times). Without some tag extension the driver finds
 * its resources by names instead (driver/marks.ts) and this says so in the log.
 */
export async function detectTagSupport(
  config: Config,
  neutron: NeutronApi,
  log: Logger,
  attempts?: number,
): Promise<TagSupport> {
  if (config.backend === 'embedded') return FULL_TAG_SUPPORT;
  const { detectNeutronFeatures } = await import('./neutron/http/extensions.ts');
  const features = await detectNeutronFeatures(neutron, { log, ...(attempts === undefined ? {} : { attempts }) });
  const support = { tag: features.tag, tagExt: features.tagExt, portTagsOnCreate: features.portTagsOnCreate };
  log.info(
    { tagMode: features.tagMode, ...support, extensions: features.extensions.size },
    'Neutron features detected',
  );
  if (!support.tag || !support.tagExt) {
    log.warn(
      support,
      `this Neutron lacks ${support.tag ? 'tags on subnets, ports and subnet pools (tag-ext)' : support.tagExt ? 'tags on networks (tag)' : 'the tag extension'}: kuryr-ts finds its resources by names, as kuryr-libnetwork does without tags (docs/migration.md)`,
    );
  }
  return support;
}

/**
 * Creates the default subnet pools (`[neutron] default_subnetpool_v4/_v6`) when missing, as an operator
 * would in Neutron (devstack creates `kuryr` with 10.10.0.0/16 for the original). Idempotent.
 */
export async function ensureDefaultPools(neutron: NeutronApi, config: Config, log: Logger): Promise<void> {
  const wanted = [
    [config.driver.defaultSubnetpoolV4, config.embedded.defaultPoolPrefixV4, config.embedded.defaultPoolPrefixlenV4],
    [config.driver.defaultSubnetpoolV6, config.embedded.defaultPoolPrefixV6, config.embedded.defaultPoolPrefixlenV6],
  ] as const;
  for (const [name, prefix, prefixlen] of wanted) {
    const found = await neutron.listSubnetPools({ name });
    if (found.length > 0) continue;
    await neutron.createSubnetPool({
      name,
      prefixes: [prefix],
      default_prefixlen: prefixlen,
      description: 'Default pool of kuryr-ts for Docker networks created without --subnet',
    });
    log.info({ pool: name, prefix, prefixlen }, 'created default subnet pool');
  }
}

/**
 * The agent's start-up pass: every Docker network in the store gets its bridge and gateway addresses back
 * (after a host reboot, or if someone deleted the bridge). Returns how many networks were checked.
 */
export async function restoreHostNetworks(neutron: NeutronApi, agent: HostNetworkAgent): Promise<number> {
  const [networks, subnets] = await Promise.all([neutron.listNetworks(), neutron.listSubnets()]);
  let count = 0;
  for (const network of networks) {
    if (!network.tags.some((t) => t.startsWith(LOWER_HALF_PREFIX))) continue;
    const own = subnets.filter((s) => s.network_id === network.id);
    await agent.ensureNetwork(hostNetworkSpec(network, gatewaysOf(own)));
    count++;
  }
  return count;
}
