/**
 * `kuryr doctor [--json] [--docker-host URL]` with the common options: checks the Docker engine, the plugin's
 * registration, the configuration, the backend, the host and leftovers (src/doctor/), prints one verdict per
 * check with a hint, and exits 1 when any check fails. A configuration error is a failed check, not a crash.
 * Its usage and help are in the command table (commands.ts).
 */
import { runDoctor, renderDoctor } from '../doctor/run.ts';
import { commonFlags, type ParsedValues } from './args.ts';

export async function doctorCommand(values: ParsedValues): Promise<number> {
  const report = await runDoctor({ flags: commonFlags(values) });
  process.stdout.write(
    values.json ? `${JSON.stringify(report)}\n` : `${renderDoctor(report, process.stdout.isTTY === true)}\n`,
  );
  return report.ok ? 0 : 1;
}
