/**
 * `nft -j list …` and `nft -f -` (a transaction on standard input) for the modules that keep nftables tables
 * (isolation.ts, publish.ts): in the process's long-lived `nft` session (nft-session.ts) when there is one, else
 * one `nft` process per call (a runner given by tests). Either way a failure is a `CommandError` naming the
 * command line, with the transaction that failed (nft's message points into it by line).
 */
import { bindingErrorReasons } from './errors.ts';
import { CommandError, type CommandRunner, commandError } from './exec.ts';
import type { NftSession } from './nft-session.ts';

export interface NftCommand {
  /** The long-lived `nft`; undefined: `exec` runs one process per call. */
  session: Pick<NftSession, 'run'> | undefined;
  exec: CommandRunner;
  /** The command line of `nft <args>` (the namespace wrapping, the binary). */
  argv: (args: readonly string[]) => string[];
  timeoutMs: number;
  /** What to do when nft cannot be run at all (the error's detail). */
  unrunnable: string;
}

/** Runs `nft <args>` (`-j list …`, or `-f -` with `input`) and returns its standard output. */
export async function runNft(nft: NftCommand, args: readonly string[], input?: string): Promise<string> {
  const [file = '', ...rest] = nft.argv(args);
  try {
    if (nft.session !== undefined) {
      // The same commands, one line each: a `list` (without its `-j`, the session's), or the transaction.
      const list = args[0] === '-j';
      const lines = list ? [args.slice(1).join(' ')] : (input ?? '').split('\n').filter((l) => l !== '');
      return await nft.session.run(lines, { list });
    }
    const { stdout } = await nft.exec(file, rest, {
      timeoutMs: nft.timeoutMs,
      ...(input === undefined ? {} : { input }),
    });
    return stdout;
  } catch (caught) {
    // errors.ts has no reason for nft: "a host networking command failed" is the closest stable one.
    const failure = commandError(bindingErrorReasons.ipCommand, [file, ...rest], caught, nft.timeoutMs);
    const { argv, exitCode, stdout, stderr } = failure;
    if (exitCode !== null) {
      const hint = input === undefined ? '' : `\n--- transaction ---\n${input}`;
      throw new CommandError(bindingErrorReasons.ipCommand, argv, { exitCode, stdout, stderr: `${stderr}${hint}` });
    }
    if (failure.signal !== undefined) {
      throw new CommandError(bindingErrorReasons.ipCommand, argv, {
        exitCode,
        stdout,
        stderr,
        timedOut: failure.timedOut,
        signal: failure.signal,
        detail: `was killed by ${failure.signal} (time limit ${nft.timeoutMs} ms)`,
      });
    }
    throw new CommandError(bindingErrorReasons.ipCommand, argv, {
      exitCode,
      stdout,
      stderr: `${stderr} (${failure.startError ?? ''})`,
      ...(failure.startError === undefined ? {} : { startError: failure.startError }),
      detail: nft.unrunnable,
    });
  }
}
