/**
 * The managed (v2) kuryr-ts plugin on a private engine, for the Swarm e2e: installed from a plugin directory
 * built by packaging/managed-plugin/build.sh (no registry), configured for a real Neutron through its `config`
 * mount, and its process found (it runs under containerd-shim) so a test can kill exactly that one.
 */
import { readdirSync, readFileSync } from 'node:fs';
import type { PrivateDockerd } from './docker-engine.ts';
import { processesMentioning } from './docker-engine.ts';

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls `check` every `everyMs` until it returns a value (not undefined), else fails with `what`. */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined>,
  timeoutMs: number,
  everyMs = 500,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    }
    await sleep(everyMs);
  }
}

/** `docker plugin create` from `pluginDir`, `set` (state and config mounts, environment), then `enable`. */
export async function installPlugin(
  engine: PrivateDockerd,
  opts: { ref: string; pluginDir: string; stateDir: string; configDir: string },
): Promise<string> {
  const name = opts.ref.replace(/:latest$/, '');
  await engine.dockerOk(['plugin', 'create', name, opts.pluginDir], { timeoutMs: 300_000 });
  await engine.dockerOk([
    'plugin',
    'set',
    opts.ref,
    `state.source=${opts.stateDir}`,
    `config.source=${opts.configDir}`,
    // The environment wins over the file for these: the image defaults to the embedded backend, local scope.
    'KURYR_BACKEND=neutron',
    'CAPABILITY_SCOPE=global',
    'LOG_LEVEL=debug',
  ]);
  await engine.dockerOk(['plugin', 'enable', opts.ref], { timeoutMs: 120_000 });
  return (await engine.dockerOk(['plugin', 'inspect', '-f', '{{.Id}}', opts.ref])).trim();
}

function parentOf(pid: number): number | undefined {
  try {
    // /proc/<pid>/stat: "pid (comm) state ppid ..."; comm may hold spaces, the last ')' ends it.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return undefined;
  }
}

/**
 * The plugin's main process (`kuryr serve`): the child of the containerd-shim whose command line names the
 * plugin ID. Undefined while none runs.
 */
export function pluginMainPid(pluginId: string): number | undefined {
  const shims = new Set(processesMentioning(pluginId));
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (shims.has(pid)) continue;
    const parent = parentOf(pid);
    if (parent === undefined || !shims.has(parent)) continue;
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (cmdline.includes('kuryr')) return pid;
    } catch {
      // gone meanwhile
    }
  }
  return undefined;
}
