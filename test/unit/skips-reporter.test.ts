import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';
import type { TestEvent } from 'node:test/reporters';
import skipsReporter, { isDeliberate, summarise } from '../reporters/skips.ts';

function pass(name: string, skip?: string | boolean): TestEvent {
  return {
    type: 'test:pass',
    data: {
      name,
      nesting: 0,
      testNumber: 1,
      file: '/t/x.test.ts',
      details: { duration_ms: 1, type: 'test' },
      ...(skip !== undefined && { skip }),
    },
  } as TestEvent;
}

async function report(events: TestEvent[]): Promise<string> {
  async function* source(): AsyncGenerator<TestEvent> {
    yield* events;
  }
  let out = '';
  for await (const line of skipsReporter(source())) out += line;
  return out;
}

describe('skips reporter', () => {
  const saved = { require: process.env.KURYR_REQUIRE_LAB, exitCode: process.exitCode };
  afterEach(() => {
    if (saved.require === undefined) delete process.env.KURYR_REQUIRE_LAB;
    else process.env.KURYR_REQUIRE_LAB = saved.require;
    process.exitCode = saved.exitCode;
  });

  test('deliberate reasons are opt-in and documented Neutron release differences only', () => {
    assert.ok(isDeliberate('opt-in: about 65 s; set KURYR_FAULTS_FULL=1'));
    assert.ok(isDeliberate('Zed: answers 400'));
    assert.ok(isDeliberate('elsewhere: runs in the OVN pass'));
    assert.ok(!isDeliberate('needs root'));
    assert.ok(!isDeliberate('Neutron lab (keystone) not usable: ...'));
  });

  test('one line counts the skips by reason, most frequent first', () => {
    const line = summarise([
      { name: 'a', file: 'f', reason: 'needs root' },
      { name: 'b', file: 'f', reason: 'Zed: x' },
      { name: 'c', file: 'f', reason: 'Zed: x' },
    ]);
    assert.equal(line, 'skipped: 3 (Zed: x ×2; needs root ×1)');
    assert.equal(summarise([]), 'skipped: 0');
  });

  test('without KURYR_REQUIRE_LAB a missing lab is reported, not failed', async () => {
    delete process.env.KURYR_REQUIRE_LAB;
    process.exitCode = undefined;
    const out = await report([pass('ok'), pass('lab', 'no Neutron lab')]);
    assert.match(out, /skipped: 1 \(no Neutron lab ×1\)/);
    assert.equal(process.exitCode, undefined);
  });

  test('with KURYR_REQUIRE_LAB=1 a skip for a missing lab fails the run and names the test', async () => {
    process.env.KURYR_REQUIRE_LAB = '1';
    process.exitCode = undefined;
    const out = await report([
      pass('ok'),
      pass('lab test', 'needs root'),
      pass('zed', 'Zed: differs'),
      pass('t', true),
    ]);
    assert.match(out, /skipped: 3/);
    assert.match(out, /REQUIRED BUT SKIPPED: \/t\/x.test.ts: lab test: needs root/);
    assert.match(out, /REQUIRED BUT SKIPPED: .*: t: no reason given/);
    assert.doesNotMatch(out, /REQUIRED BUT SKIPPED: .*zed/);
    assert.equal(process.exitCode, 1);
  });

  test('with KURYR_REQUIRE_LAB=1 deliberate skips alone keep the run green', async () => {
    process.env.KURYR_REQUIRE_LAB = '1';
    process.exitCode = undefined;
    await report([pass('zed', 'Zed: differs'), pass('long', 'opt-in: 65 s')]);
    assert.equal(process.exitCode, undefined);
  });
});
