/**
 * node:test reporter that prints one line with the number of skipped tests and why, after the run:
 *
 *   skipped: 3 (Zed: ... ×2; opt-in: ... ×1)
 *
 * With KURYR_REQUIRE_LAB=1 (set by .ci/run), a skip is a failure unless its reason says it was meant:
 * `opt-in: ...` (a long case run on request), `Zed: ...` (a documented difference of the Neutron release) or
 * `elsewhere: ...` (a file that runs in the other pass of the same run, e.g. on the ML2/OVN lab).
 * Any other reason means a lab, root, a kernel feature or a tool was missing, and a suite that skips for that
 * proves nothing; the run then ends with exit code 1 and a line naming each such test.
 *
 * Used next to the spec reporter: `--test-reporter=spec --test-reporter-destination=stdout
 * --test-reporter=./test/reporters/skips.ts --test-reporter-destination=stdout`.
 */
import type { TestEvent } from 'node:test/reporters';

/** Reasons that mark a deliberate skip, allowed even when the lab is required. */
const DELIBERATE = [/^opt-in:/, /^Zed:/, /^elsewhere:/];

interface Skip {
  name: string;
  file: string;
  reason: string;
}

export function isDeliberate(reason: string): boolean {
  return DELIBERATE.some((re) => re.test(reason));
}

/** `reason ×count` for each distinct reason, most frequent first. */
export function summarise(skips: readonly Skip[]): string {
  if (skips.length === 0) return 'skipped: 0';
  const counts = new Map<string, number>();
  for (const s of skips) counts.set(s.reason, (counts.get(s.reason) ?? 0) + 1);
  const parts = [...counts].sort((a, b) => b[1] - a[1]).map(([reason, n]) => `${reason} ×${n}`);
  return `skipped: ${skips.length} (${parts.join('; ')})`;
}

export default async function* skipsReporter(source: AsyncIterable<TestEvent>): AsyncGenerator<string> {
  const skips: Skip[] = [];
  for await (const event of source) {
    if (event.type !== 'test:pass' && event.type !== 'test:fail') continue;
    const { skip } = event.data;
    if (skip === undefined || skip === false) continue;
    skips.push({
      name: event.data.name,
      file: event.data.file ?? '?',
      reason: typeof skip === 'string' && skip !== '' ? skip : 'no reason given',
    });
  }
  yield `\n${summarise(skips)}\n`;
  if (process.env.KURYR_REQUIRE_LAB !== '1') return;
  const missing = skips.filter((s) => !isDeliberate(s.reason));
  if (missing.length === 0) return;
  for (const s of missing) yield `REQUIRED BUT SKIPPED: ${s.file}: ${s.name}: ${s.reason}\n`;
  yield `KURYR_REQUIRE_LAB=1: ${missing.length} test(s) skipped because something they need is missing: failing the run\n`;
  process.exitCode = 1;
}
