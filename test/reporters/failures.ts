/**
 * node:test reporter that appends each failed test and its error to the file named by KURYR_FAILURES_FILE
 * (nothing when that is unset). scripts/test.sh runs two passes (the Linux bridge lab, then the ML2/OVN lab) and
 * prints that file last, so the end of a CI log names every failure of both passes with its reason, not only
 * those of the last pass.
 *
 * Used next to the spec reporter: `--test-reporter=./test/reporters/failures.ts
 * --test-reporter-destination=stdout` (it writes nothing to its destination).
 */
import { appendFileSync } from 'node:fs';
import type { TestEvent } from 'node:test/reporters';
import { inspect } from 'node:util';

/** Lines kept of one failure's error (an assertion's diff or a plugin log tail can be long). */
const MAX_LINES = 25;

interface Failure {
  name: string;
  file: string;
  line: number | undefined;
  error: unknown;
}

/** The error a test failed with: node:test wraps it (ERR_TEST_FAILURE) with the real one as `cause`. */
function unwrap(error: unknown): unknown {
  if (error instanceof Error && (error as { code?: unknown }).code === 'ERR_TEST_FAILURE' && error.cause) {
    return error.cause;
  }
  return error;
}

/** A suite that failed only because some of its tests did: those are reported themselves. */
function onlySubtests(error: unknown): boolean {
  return (error as { failureType?: unknown } | null)?.failureType === 'subtestsFailed';
}

/** An error's name and message (an assertion's includes its diff) and the frame it was thrown at. */
function errorText(error: unknown): string[] {
  if (!(error instanceof Error)) return inspect(error, { depth: 4, breakLength: 120 }).split('\n');
  const at = (error.stack ?? '').split('\n').find((l) => l.trimStart().startsWith('at '));
  const cause = error.cause instanceof Error ? [`cause: ${error.cause.name}: ${error.cause.message}`] : [];
  return [`${error.name}: ${error.message}`.split('\n'), at === undefined ? [] : [at.trim()], cause].flat();
}

export function describeFailure(f: Failure): string {
  const text = errorText(unwrap(f.error));
  const kept =
    text.length > MAX_LINES ? [...text.slice(0, MAX_LINES), `… (${text.length - MAX_LINES} more lines)`] : text;
  const where = f.line === undefined ? f.file : `${f.file}:${f.line}`;
  return `✖ ${f.name} (${where})\n${kept.map((l) => `    ${l}`).join('\n')}\n`;
}

export default async function* failuresReporter(source: AsyncIterable<TestEvent>): AsyncGenerator<string> {
  const file = process.env.KURYR_FAILURES_FILE;
  for await (const event of source) {
    if (event.type !== 'test:fail' || file === undefined || file === '') continue;
    const { error } = event.data.details;
    if (onlySubtests(error)) continue;
    appendFileSync(
      file,
      describeFailure({ name: event.data.name, file: event.data.file ?? '?', line: event.data.line, error }),
    );
  }
  yield '';
}
