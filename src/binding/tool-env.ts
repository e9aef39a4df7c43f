/**
 * The environment every host tool runs with: `ip`, `nft`, `ovs-vsctl`, bind scripts and the doctor's probes.
 * Only `PATH` and `LANG=C`, nothing inherited: the plugin runs as root and its own environment may carry
 * secrets (`SERVICE_PASSWORD`, `OS_PASSWORD`, the original image's variables) that no child needs to see.
 * `LANG=C` with no other locale variable gives the untranslated messages the binding layer matches on.
 */

/** The `PATH` used when the process has none (the usual root PATH). */
const DEFAULT_TOOL_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** `{ PATH, LANG: 'C' }`: the process's PATH (tools are found where the operator installed them), nothing else. */
export function toolEnv(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const path = env.PATH;
  return { PATH: path !== undefined && path !== '' ? path : DEFAULT_TOOL_PATH, LANG: 'C' };
}
