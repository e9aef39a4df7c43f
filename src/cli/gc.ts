/**
 * `kuryr gc [--dry-run] [--json] [--grace SECONDS] [--docker-host URL] [--force]`: removes what this plugin
 * created and nothing uses any more (see reconcile/gc.ts), with a process built by the composition root
 * (app.ts), as `serve`'s own start-up and periodic passes are.
 */
import { type GcRunOptions, type GcRunReport, runGcOnce } from '../app.ts';
import type { Config } from '../config/config.ts';
import type { Logger } from '../observability/logger.ts';

/** The `gc` command. */
export function gcCommand(config: Config, log: Logger, opts: GcRunOptions): Promise<GcRunReport> {
  return runGcOnce(config, log, opts);
}

/** Text rendering of a gc report. */
export function renderGc(report: GcRunReport): string {
  const lines: string[] = [];
  if (report.dockerError !== undefined) lines.push(`Docker not reachable: ${report.dockerError}`);
  if (report.dockerSkipped !== undefined && report.dockerError === undefined)
    lines.push(`Docker's view not used: ${report.dockerSkipped}`);
  if (report.actions.length === 0) lines.push('nothing to remove');
  for (const a of report.actions) {
    lines.push(
      `${a.result.padEnd(7)} ${a.kind.padEnd(14)} ${a.id}${a.name ? ` (${a.name})` : ''}: ${a.reason}${a.error ? ` — ${a.error}` : ''}`,
    );
  }
  return lines.join('\n');
}
