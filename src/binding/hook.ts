/**
 * Bind scripts: every `binding:vif_type` without an in-process binding (Midonet, IOvisor, vendor backends)
 * runs the executable `<bindir>/<vif_type>` with kuryr's calling convention (behaviour doc 13.3), so scripts
 * written for kuryr-libnetwork keep working unchanged:
 *
 *   bind   <port id> <tap name> <endpoint id> <mac> <network id> <project id> <details>
 *   unbind <port id> <tap name> <endpoint id> <mac> <details> <network id>
 *
 * (the order differs between the two, as in kuryr). `<details>` is `binding:vif_details` as kuryr renders it:
 * `"{'port_filter': True}"` (double quotes included), or `None` when there are none.
 */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import type { VifPort } from './binder.ts';
import { redactText } from '../observability/redact.ts';
import { CommandError, type CommandOutput, type CommandRunner, runCommand } from './exec.ts';
import { pythonRepr } from './python-repr.ts';
import { BindingError, bindingErrorReasons } from './errors.ts';

/** Where bind scripts' output goes (structurally a subset of the plugin's logger). */
export interface BindingLog {
  debug(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

const DEFAULT_BINDIR = '/usr/libexec/kuryr';
/** Default time limit of one bind script run. */
const DEFAULT_HOOK_TIMEOUT_MS = 60_000;

/**
 * vif types that may name a script: letters, digits, `_`, `-`, starting with a letter or digit (every Neutron
 * vif type fits: `ovs`, `midonet`, `iovisor`, `vhostuser`, `hw_veb`, `binding_failed`, ...). No `/`, no dots:
 * a vif type can never reach outside `bindir` or name a hidden file.
 */
const SCRIPT_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;

export interface BindHooksOptions {
  /** `[DEFAULT] bindir`: directory of the scripts; default `/usr/libexec/kuryr`. */
  bindir?: string;
  /** Time limit of one script run; default 60 s (the script is killed with SIGKILL). */
  timeoutMs?: number;
  /** Replaces the process runner (tests). */
  runner?: CommandRunner;
  log?: BindingLog;
}

const silent: BindingLog = { debug() {}, warn() {}, error() {} };

/** `binding:vif_details` as kuryr passes it to scripts: `"<Python repr>"`, or `None` when empty. */
export function vifDetailsText(details: unknown): string {
  if (details === null || typeof details !== 'object' || Object.keys(details).length === 0) return 'None';
  return `"${pythonRepr(details)}"`;
}

/** The error kuryr gives for a vif type without a script (word for word). */
function scriptNotFound(vifType: string): BindingError {
  return new BindingError(
    bindingErrorReasons.vifTypeUnsupported,
    `vif_type(${vifType}) is not supported. A binding script for this type can't be found`,
  );
}

/** Runs `<bindir>/<vif_type>` scripts. Stateless; safe to share. */
export class BindHooks {
  readonly bindir: string;
  readonly #timeoutMs: number;
  readonly #runner: CommandRunner | undefined;
  readonly #log: BindingLog;

  constructor(options: BindHooksOptions = {}) {
    this.bindir = path.resolve(options.bindir ?? DEFAULT_BINDIR);
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_HOOK_TIMEOUT_MS;
    this.#runner = options.runner;
    this.#log = options.log ?? silent;
  }

  /**
   * The script of `vifType`: its absolute path once checked that the name is safe and that the file exists.
   * Rejects with `BindingError` (`vif-type-unsupported`) otherwise; kuryr's exact text when it is missing.
   */
  async scriptFor(vifType: string): Promise<string> {
    const file = this.#pathOf(vifType);
    try {
      await stat(file); // follows symlinks, like os.path.exists
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') throw scriptNotFound(vifType);
      throw new BindingError(bindingErrorReasons.bindScript, `bind script ${file} cannot be checked: ${err}`);
    }
    return file;
  }

  /** Run `<script> bind ...` for `port`, whose host interface is `hostIfname`. */
  async bind(script: string, port: VifPort, hostIfname: string): Promise<void> {
    await this.#run(script, [
      'bind',
      port.portId,
      hostIfname,
      port.endpointId,
      port.mac,
      port.networkId,
      port.projectId,
      vifDetailsText(port.vifDetails),
    ]);
  }

  /**
   * Run `<bindir>/<vif type> unbind ...` for `port`. A vif type without a (valid) script is skipped with a
   * warning instead of failing, so that an endpoint can always be removed (kuryr fails here).
   */
  async unbind(vifType: string, port: VifPort, hostIfname: string): Promise<void> {
    let script: string;
    try {
      script = await this.scriptFor(vifType);
    } catch (err) {
      if (!(err instanceof BindingError) || err.reason !== bindingErrorReasons.vifTypeUnsupported) throw err;
      this.#log.warn({ port: port.portId, vifType }, `no unbind script run: ${err.message}`);
      return;
    }
    await this.#run(script, [
      'unbind',
      port.portId,
      hostIfname,
      port.endpointId,
      port.mac,
      vifDetailsText(port.vifDetails),
      port.networkId,
    ]);
  }

  #pathOf(vifType: string): string {
    if (typeof vifType !== 'string' || !SCRIPT_NAME.test(vifType)) {
      throw new BindingError(
        bindingErrorReasons.vifTypeUnsupported,
        `vif_type(${JSON.stringify(vifType)}) is not supported: not a valid bind script name (1-64 letters, digits, '_', '-')`,
      );
    }
    const file = path.join(this.bindir, vifType);
    // Belt and braces: the allow-list already rules out anything but a direct child of bindir.
    if (path.dirname(file) !== this.bindir) throw new Error(`bind script path ${file} escapes ${this.bindir}`);
    return file;
  }

  async #run(script: string, args: string[]): Promise<void> {
    const what = { script, command: args[0], port: args[1] };
    let output: CommandOutput;
    try {
      output = await runCommand(bindingErrorReasons.bindScript, script, args, {
        timeoutMs: this.#timeoutMs,
        ...(this.#runner === undefined ? {} : { runner: this.#runner }),
      });
    } catch (err) {
      // Docker's Err gets a short excerpt (CommandError); the whole output, redacted, goes to the log.
      if (err instanceof CommandError)
        this.#log.error(
          { ...what, exit: err.exitCode, stdout: redactText(err.stdout), stderr: redactText(err.stderr) },
          'bind script failed',
        );
      throw err;
    }
    // As kuryr: standard output at debug level, standard error at error level; credentials in them redacted.
    if (output.stdout.trim() !== '')
      this.#log.debug({ ...what, stdout: redactText(output.stdout) }, 'bind script output');
    if (output.stderr.trim() !== '')
      this.#log.error({ ...what, stderr: redactText(output.stderr) }, 'bind script error');
  }
}
