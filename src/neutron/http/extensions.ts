/**
 * Start-up feature detection, once per process: one `GET /v2.0/extensions` (instead of kuryr-libnetwork's three
 * to four `GET /v2.0/extensions/<alias>` calls) and set lookups.
 *
 * - `subnet_allocation` (subnet pools) is mandatory: without it start-up fails with kuryr's message.
 * - Tags: `standard-attr-tag` → full support; otherwise the legacy `tag` (networks) and `tag-ext` (subnets,
 *   ports, subnet pools) count separately, as kuryr's two flags do; neither → no tags.
 * - `tag-ports-during-bulk-creation` (an ML2 extension driver): a port POST may carry `tags`, saving the tags call
 *   after it. Neutron (up to Zed at least) has no such extension for networks, subnets or subnet pools.
 * - Other failures (Neutron or Keystone not up yet) are retried like kuryr does: 8 attempts, 0, 1, 3, ... 63 s apart.
 */
import type { Logger } from '../../observability/logger.ts';
import { KuryrError } from '../../errors.ts';
import type { NeutronApi } from '../api.ts';

/** `full`: `standard-attr-tag`; `legacy`: only `tag` and/or `tag-ext`; `none`: no tag extension. */
export type TagMode = 'full' | 'legacy' | 'none';

export interface NeutronFeatures {
  /** Aliases of every loaded extension. */
  extensions: ReadonlySet<string>;
  tagMode: TagMode;
  /** Networks take tags (kuryr's `tag` flag): `standard-attr-tag` or `tag`. */
  tag: boolean;
  /** Subnets, ports and subnet pools take tags (kuryr's `tag_ext` flag): `standard-attr-tag` or `tag-ext`. */
  tagExt: boolean;
  /** A port POST may carry `tags` (`tag-ports-during-bulk-creation`, with tags on ports). */
  portTagsOnCreate: boolean;
}

/** The extension that lets a port POST carry `tags`. */
export const PORT_TAGS_ON_CREATE = 'tag-ports-during-bulk-creation';

/** The mandatory extension. */
export const REQUIRED_EXTENSION = 'subnet_allocation';

/** Start-up error: the mandatory extension is missing (not retried). */
export function missingExtensionError(alias: string): KuryrError {
  return new KuryrError('KURYR_ERR_NEUTRON', `Neutron extension with alias '${alias}' not found`);
}

/** Features from a set of extension aliases; throws when `subnet_allocation` is missing. */
export function featuresFromAliases(aliases: Iterable<string>): NeutronFeatures {
  const extensions = new Set(aliases);
  if (!extensions.has(REQUIRED_EXTENSION)) throw missingExtensionError(REQUIRED_EXTENSION);
  const full = extensions.has('standard-attr-tag');
  const tag = full || extensions.has('tag');
  const tagExt = full || extensions.has('tag-ext');
  const portTagsOnCreate = tagExt && extensions.has(PORT_TAGS_ON_CREATE);
  return { extensions, tagMode: full ? 'full' : tag || tagExt ? 'legacy' : 'none', tag, tagExt, portTagsOnCreate };
}

export interface DetectOptions {
  /** Attempts in total (kuryr: 8). */
  attempts?: number;
  /** Wait before attempt n+1 (default `(2^(n−1) − 1)` s: 0, 1, 3, 7, 15, 31, 63 s, kuryr's schedule). */
  delayMs?: (attempt: number) => number;
  sleep?: (ms: number) => Promise<void>;
  log?: Logger;
}

/** Detect the extensions once; see the module comment. */
export async function detectNeutronFeatures(
  api: Pick<NeutronApi, 'listExtensions'>,
  options: DetectOptions = {},
): Promise<NeutronFeatures> {
  const attempts = options.attempts ?? 8;
  const delayMs = options.delayMs ?? ((n: number) => (2 ** (n - 1) - 1) * 1000);
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  let lastError: unknown;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    if (attempt > 1) await sleep(delayMs(attempt - 1));
    let aliases: string[];
    try {
      aliases = (await api.listExtensions()).map((e) => e.alias);
    } catch (err) {
      lastError = err;
      options.log?.warn(
        { attempt, attempts, err: err instanceof Error ? err.message : String(err) },
        'cannot list Neutron extensions',
      );
      continue;
    }
    const features = featuresFromAliases(aliases);
    if (features.tagMode !== 'full') {
      for (const alias of [
        'standard-attr-tag',
        ...(features.tag ? [] : ['tag']),
        ...(features.tagExt ? [] : ['tag-ext']),
      ]) {
        options.log?.warn({ extension: alias }, `Neutron extension ${alias} is not available`);
      }
    }
    return features;
  }
  throw lastError instanceof Error ? lastError : new Error(String(lastError));
}
