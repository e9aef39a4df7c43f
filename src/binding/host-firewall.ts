/**
 * What the embedded backend adds to the host's iptables firewall, and only when that firewall would otherwise drop
 * the networks' traffic: Docker with `--iptables=true` (its default) sets the iptables `FORWARD` policy to `DROP`
 * and loads `br_netfilter`, so traffic out of a bridge, replies into it, and (with `bridge-nf-call-iptables=1`)
 * even frames between two containers of one bridge are dropped by iptables — whatever the plugin's own table
 * accepts. Then, per network bridge, two rules, in Docker's `DOCKER-USER` chain when it exists (the chain Docker
 * keeps for its users' rules), else at the top of `FORWARD`, for iptables and ip6tables alike:
 *
 *   -i <bridge> -m comment --comment "kuryr-ts" -j ACCEPT
 *   -o <bridge> -m conntrack --ctstate RELATED,ESTABLISHED,DNAT -m comment --comment "kuryr-ts" -j ACCEPT
 *
 * These only stop iptables from dropping what the plugin's nftables table (isolation.ts) lets through: a drop in
 * any base chain is final, so the table still decides (internal networks, isolation between networks,
 * unsolicited traffic into a network). Nothing is added when the policy is `ACCEPT` and there is no `DOCKER-USER`
 * (checked again at every network creation and at every start); the rules of a bridge go with its network.
 * Each tool is asked with one listing (`-S`) per call, both tools at once: a host whose FORWARD accepts costs one
 * process per tool, and removing the rules of a bridge that this process found needed none costs none. The
 * changes of a call are one `iptables-restore --noflush` per tool (all of them or none),
 * when the listing shows each rule exactly as iptables prints it; a rule listed in another form is looked for
 * with `-C` and changed one command at a time, as is everything when the restore fails (a rule another process
 * changed meanwhile).
 */
import { BindingError, bindingErrorReasons } from './errors.ts';
import { CommandError, type CommandRunner, execRunner, runCommand } from './exec.ts';
import { validateInterfaceName } from './names.ts';

/** What the agent asks of the host's firewall, per network bridge. */
export interface HostFirewall {
  ensureNetwork(bridge: string): Promise<void>;
  /** Remove the bridge's rules. */
  removeNetwork(bridge: string): Promise<void>;
}

export interface IptablesAcceptOptions {
  /** Run in this named network namespace (`ip netns exec NAME iptables ...`); tests use it. */
  netns?: string;
  /** The programs, default `iptables` and `ip6tables` (found on PATH, as Docker does). */
  binaries?: readonly string[];
  timeoutMs?: number;
  exec?: CommandRunner;
}

const COMMENT = ['-m', 'comment', '--comment', 'kuryr-ts'];
const USER_CHAIN = 'DOCKER-USER';

/** The rules of one bridge (without chain and action). */
export function acceptRules(bridge: string): string[][] {
  return [
    ['-i', bridge, ...COMMENT, '-j', 'ACCEPT'],
    ['-o', bridge, '-m', 'conntrack', '--ctstate', 'RELATED,ESTABLISHED,DNAT', ...COMMENT, '-j', 'ACCEPT'],
  ];
}

/**
 * Whether `iptables -S` printed a rule of `chain` that may be `rule`: one naming its interface (`-i brqX`) and our
 * comment. A loose test on purpose (iptables may print a rule in another form than it was given): it only spares
 * the `-C` of a rule that is certainly absent.
 */
function mayBeListed(listing: string, chain: string, rule: readonly string[]): boolean {
  const iface = ` ${rule[0]} ${rule[1]} `;
  return listing
    .split('\n')
    .some((line) => line.startsWith(`-A ${chain} `) && `${line} `.includes(iface) && line.includes(COMMENT[3]!));
}

/**
 * How `listing` holds `rule` in `chain`: `exact` copies printed just as the rule is written (how iptables prints
 * the rules this module adds), and whether some line may be it in another form (`loose`, see `mayBeListed`).
 */
function listedCopies(listing: string, chain: string, rule: readonly string[]): { exact: number; loose: boolean } {
  const text = `-A ${chain} ${rule.join(' ')}`;
  let exact = 0;
  let loose = false;
  for (const line of listing.split('\n')) {
    if (line === text) exact++;
    else if (mayBeListed(line, chain, rule)) loose = true;
  }
  return { exact, loose };
}

/** Runs `step` for each tool at once (iptables and ip6tables are independent); the first failure is the news. */
async function eachTool(tools: readonly string[], step: (tool: string) => Promise<void>): Promise<void> {
  const results = await Promise.allSettled(tools.map(step));
  const failed = results.find((r) => r.status === 'rejected');
  if (failed !== undefined) throw failed.reason;
}

/** iptables/ip6tables ACCEPT rules for the plugin's bridges on hosts whose FORWARD policy would drop them. */
export class IptablesAccept implements HostFirewall {
  readonly #netns: string | undefined;
  readonly #binaries: readonly string[];
  readonly #timeoutMs: number;
  readonly #exec: CommandRunner;
  /**
   * Bridges whose last ensureNetwork (in this process) found no tool that drops and none of their rules listed:
   * only ensureNetwork adds rules, so their removal needs no listing (two `iptables -S` fewer per DeleteNetwork on
   * a host that accepts). Every start ensures every network again.
   */
  readonly #ruleless = new Set<string>();

  constructor(options: IptablesAcceptOptions = {}) {
    this.#netns = options.netns;
    if (this.#netns !== undefined) validateInterfaceName(this.#netns);
    this.#binaries = options.binaries ?? ['iptables', 'ip6tables'];
    this.#timeoutMs = options.timeoutMs ?? 10_000;
    this.#exec = options.exec ?? execRunner;
  }

  async ensureNetwork(bridge: string): Promise<void> {
    validateInterfaceName(bridge);
    this.#ruleless.delete(bridge);
    let ruleless = true;
    await eachTool(this.#binaries, async (tool) => {
      const state = await this.#state(tool);
      if (state === undefined) return; // no such tool, or no filter table: nothing can drop
      const chain = state.userChain ? USER_CHAIN : state.forwardDrops ? 'FORWARD' : undefined;
      if (chain === undefined) {
        const anyListed = [USER_CHAIN, 'FORWARD'].some((c) =>
          acceptRules(bridge).some((r) => mayBeListed(state.listing, c, r)),
        );
        if (anyListed) ruleless = false;
        return;
      }
      ruleless = false;
      const rules = [...acceptRules(bridge)].reverse();
      const listed = rules.map((rule) => listedCopies(state.listing, chain, rule));
      if (listed.every((l) => l.exact > 0 || !l.loose)) {
        // Each rule there as iptables prints it, or certainly absent: the absent ones in one restore.
        const inserts = rules.filter((_, i) => listed[i]!.exact === 0).map((rule) => ['-I', chain, '1', ...rule]);
        if (inserts.length === 0 || (await this.#restore(tool, inserts))) return;
      }
      for (const rule of rules) {
        // Absent from the listing: inserted without asking; listed (maybe in another form): `-C` decides.
        const present = mayBeListed(state.listing, chain, rule) && (await this.#ok(tool, ['-C', chain, ...rule]));
        if (!present) await this.#must(tool, ['-I', chain, '1', ...rule]);
      }
    });
    if (ruleless) this.#ruleless.add(bridge);
  }

  async removeNetwork(bridge: string): Promise<void> {
    validateInterfaceName(bridge);
    // This process's last ensureNetwork of the bridge found it needed no rule and had none: nothing to list.
    if (this.#ruleless.delete(bridge)) return;
    await eachTool(this.#binaries, async (tool) => {
      const state = await this.#state(tool);
      if (state === undefined) return;
      const chains = state.userChain ? [USER_CHAIN, 'FORWARD'] : ['FORWARD'];
      const pairs = chains.flatMap((chain) => acceptRules(bridge).map((rule) => ({ chain, rule })));
      const listed = pairs.map(({ chain, rule }) => listedCopies(state.listing, chain, rule));
      if (listed.every((l) => l.exact > 0 || !l.loose)) {
        // Every copy listed as iptables prints it: all deleted in one restore.
        const deletes = pairs.flatMap(({ chain, rule }, i) =>
          Array.from({ length: listed[i]!.exact }, () => ['-D', chain, ...rule]),
        );
        if (deletes.length === 0 || (await this.#restore(tool, deletes))) return;
      }
      for (const chain of chains) {
        for (const rule of acceptRules(bridge)) {
          // Not in the listing: nothing to delete (the usual case: a host whose FORWARD accepts).
          if (!mayBeListed(state.listing, chain, rule)) continue;
          // -D removes one copy; a rule added twice (two processes) goes on the next round.
          for (let i = 0; i < 4 && (await this.#ok(tool, ['-C', chain, ...rule])); i++) {
            await this.#must(tool, ['-D', chain, ...rule]);
          }
        }
      }
    });
  }

  /**
   * The filter table of `tool` in ONE listing (`-S`: policies, chains, rules): whether it has a DOCKER-USER chain
   * and a FORWARD policy of DROP, and its rules; undefined when it cannot be asked.
   */
  async #state(tool: string): Promise<{ userChain: boolean; forwardDrops: boolean; listing: string } | undefined> {
    let listing: string;
    try {
      listing = await this.#run(tool, ['-S']);
    } catch (err) {
      if (err instanceof CommandError && (err.startError === 'ENOENT' || err.exitCode !== null)) return undefined;
      throw err;
    }
    const forwardDrops = /^-P FORWARD DROP$/m.test(listing);
    const userChain = new RegExp(`^-N ${USER_CHAIN}$`, 'm').test(listing);
    return { userChain, forwardDrops, listing };
  }

  /**
   * Applies `changes` (`-I`/`-D` lines of the filter table) in one `<tool>-restore --noflush`: all or none. False
   * when it failed (nothing changed: a rule to delete was gone, or there is no such program): the caller goes on
   * one command at a time.
   */
  async #restore(tool: string, changes: readonly (readonly string[])[]): Promise<boolean> {
    const input = `*filter\n${changes.map((c) => c.join(' ')).join('\n')}\nCOMMIT\n`;
    try {
      await this.#spawn(`${tool}-restore`, ['-w', '--noflush'], input);
      return true;
    } catch (err) {
      if (err instanceof CommandError) return false;
      throw err;
    }
  }

  async #ok(tool: string, args: readonly string[]): Promise<boolean> {
    try {
      await this.#run(tool, args);
      return true;
    } catch (err) {
      if (err instanceof CommandError && err.exitCode !== null) return false;
      throw err;
    }
  }

  async #must(tool: string, args: readonly string[]): Promise<void> {
    try {
      await this.#run(tool, args);
    } catch (err) {
      const detail = err instanceof CommandError && err.stderr ? err.stderr.trim() : String((err as Error).message);
      throw new BindingError(bindingErrorReasons.ipCommand, `\`${tool} ${args.join(' ')}\` failed: ${detail}`);
    }
  }

  #run(tool: string, args: readonly string[]): Promise<string> {
    // -w: wait for the xtables lock (Docker and firewalld take it too).
    return this.#spawn(tool, ['-w', '-t', 'filter', ...args]).then((r) => r.stdout);
  }

  /** Runs `program` (in the namespace, when there is one), with `input` on its standard input. */
  #spawn(program: string, argv: readonly string[], input?: string) {
    const [file, rest] =
      this.#netns === undefined ? [program, argv] : ['ip', ['netns', 'exec', this.#netns, program, ...argv]];
    return runCommand(bindingErrorReasons.ipCommand, file, rest, {
      timeoutMs: this.#timeoutMs,
      runner: this.#exec,
      ...(input === undefined ? {} : { input }),
    });
  }
}
