/**
 * A `NeutronApi` decorator that counts every call without changing what it does: per method (`listPorts`,
 * `createPort`, ...) for the whole process, and per libnetwork request through the request context
 * (observability/request-context.ts), and tells an optional listener when each call ends (for metrics).
 * Every `NeutronApi` method is one Neutron HTTP call, so these are the Neutron API calls a backend sees.
 */
import { currentRequest } from '../observability/request-context.ts';
import type { Deadline } from '../util/deadline.ts';
import { type DeadlineBinding, type NeutronApi, withDeadline } from './api.ts';
import { NeutronError } from './errors.ts';

export type NeutronMethod = keyof NeutronApi;

/** Every method of `NeutronApi` (checked below: adding one to the interface without listing it fails to compile). */
export const NEUTRON_METHODS = [
  'listExtensions',
  'listNetworks',
  'showNetwork',
  'createNetwork',
  'updateNetwork',
  'deleteNetwork',
  'listSubnets',
  'showSubnet',
  'createSubnets',
  'updateSubnet',
  'deleteSubnet',
  'listSubnetPools',
  'showSubnetPool',
  'createSubnetPool',
  'updateSubnetPool',
  'deleteSubnetPool',
  'listPorts',
  'showPort',
  'createPort',
  'updatePort',
  'deletePort',
  'listSecurityGroups',
  'createSecurityGroup',
  'deleteSecurityGroup',
  'createSecurityGroupRules',
  'replaceTags',
  'addTag',
  'removeTag',
] as const satisfies readonly NeutronMethod[];

type Unlisted = Exclude<NeutronMethod, (typeof NEUTRON_METHODS)[number]>;
const everyMethodListed: [Unlisted] extends [never] ? true : Unlisted = true;
void everyMethodListed;

/** One finished Neutron call. */
export interface NeutronCallEvent {
  method: NeutronMethod;
  /** The libnetwork method being served (`NetworkDriver.Join`), or undefined outside a request (start-up). */
  endpoint: string | undefined;
  seconds: number;
  /** `'ok'`, the HTTP status of a `NeutronError` (`'404'`), or `'error'` for anything else. */
  outcome: string;
}

export interface CountingNeutronApi extends NeutronApi, DeadlineBinding {
  withDeadline(deadline: Deadline): CountingNeutronApi;
  /** Calls made through this wrapper since it was created, per method (methods never called are absent). */
  callCounts(): Partial<Record<NeutronMethod, number>>;
  /** All calls made through this wrapper since it was created. */
  totalCalls(): number;
}

function outcomeOf(err: unknown): string {
  return err instanceof NeutronError ? String(err.status) : 'error';
}

/** Wraps `inner`: same results and errors, each call counted; `onCall` hears of every call when it ends. */
export function countingNeutron(inner: NeutronApi, onCall?: (event: NeutronCallEvent) => void): CountingNeutronApi {
  return countingView(inner, onCall, { counts: {}, total: 0 });
}

/** The counting wrapper of `inner` over `tally`; its views bound to a deadline (`withDeadline`) count into it too. */
function countingView(
  inner: NeutronApi,
  onCall: ((event: NeutronCallEvent) => void) | undefined,
  tally: { counts: Partial<Record<NeutronMethod, number>>; total: number },
): CountingNeutronApi {
  const { counts } = tally;
  const wrapper: Record<string, unknown> = {
    callCounts: () => ({ ...counts }),
    totalCalls: () => tally.total,
    // An implementation with nothing to bind (the embedded store): this wrapper itself, nothing built per request.
    withDeadline: (deadline: Deadline) => {
      const bound = withDeadline(inner, deadline);
      return bound === inner ? wrapper : countingView(bound, onCall, tally);
    },
  };
  for (const method of NEUTRON_METHODS) {
    const original = inner[method] as (...args: unknown[]) => Promise<unknown>;
    wrapper[method] = (...args: unknown[]): Promise<unknown> => {
      counts[method] = (counts[method] ?? 0) + 1;
      tally.total++;
      const request = currentRequest();
      if (request !== undefined) request.neutronCalls++;
      if (onCall === undefined) return original.apply(inner, args);
      const started = process.hrtime.bigint();
      const report = (outcome: string) => {
        const seconds = Number(process.hrtime.bigint() - started) / 1e9;
        try {
          onCall({ method, endpoint: request?.method, seconds, outcome });
        } catch {
          // A listener failure must never change the call's result.
        }
      };
      let result: Promise<unknown>;
      try {
        result = Promise.resolve(original.apply(inner, args));
      } catch (err) {
        report(outcomeOf(err));
        throw err;
      }
      return result.then(
        (value) => {
          report('ok');
          return value;
        },
        (err: unknown) => {
          report(outcomeOf(err));
          throw err;
        },
      );
    };
  }
  return wrapper as unknown as CountingNeutronApi;
}
