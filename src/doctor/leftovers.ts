/**
 * `leftovers`: what `kuryr gc` would remove — networks and ports of ours whose Docker network or endpoint is
 * gone, orphaned security groups and pools, and host devices (`tap…`, `brq…`) with nothing behind them. Found
 * by a dry run of gc itself (nothing is removed), so doctor and gc cannot disagree.
 */
import type { Config } from '../config/config.ts';
import { runGcOnce } from '../app.ts';
import { silentLogger } from '../observability/logger.ts';
import { type CheckResult, failed, messageOf, ok, warn } from './types.ts';

/** Same grace period as `kuryr gc`: younger objects may belong to a Docker call in flight. */
const GRACE_SECONDS = 60;
/** How many leftovers the summary names. */
const LISTED = 5;

export async function checkLeftovers(config: Config): Promise<CheckResult> {
  try {
    const report = await runGcOnce(config, silentLogger(), {
      dryRun: true,
      graceSeconds: GRACE_SECONDS,
      dockerHost: config.dockerHost,
      force: false,
    });
    const notes: string[] = [];
    if (report.dockerError !== undefined) notes.push(`Docker not asked (${report.dockerError})`);
    else if (report.dockerSkipped !== undefined) notes.push(`Docker's view not used: ${report.dockerSkipped}`);
    const planned = report.actions;
    if (planned.length === 0) {
      return ok('leftovers', `nothing for kuryr gc to remove${notes.length > 0 ? `; ${notes.join('; ')}` : ''}`);
    }
    const named = planned.slice(0, LISTED).map((a) => `${a.kind} ${a.name ?? a.id} (${a.reason})`);
    const more = planned.length > LISTED ? `, and ${planned.length - LISTED} more` : '';
    return warn(
      'leftovers',
      `${planned.length} leftover${planned.length === 1 ? '' : 's'}: ${named.join('; ')}${more}`,
      'kuryr gc removes them (kuryr gc --dry-run lists them all)',
    );
  } catch (err) {
    return failed('leftovers', `could not look for leftovers: ${messageOf(err)}`, 'see the backend checks above');
  }
}
