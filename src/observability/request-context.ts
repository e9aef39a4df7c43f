/**
 * The context of one libnetwork request, carried through every await of its handling by AsyncLocalStorage:
 * a request ID for the logs, the libnetwork method, when it started (wall clock and process CPU) and how
 * many Neutron API calls it has made so far (counted by neutron/counting.ts), for the access log and the metrics.
 * The request's deadline is passed explicitly, as an AbortSignal (util/deadline.ts), from plugin/server.ts to the
 * driver and its Neutron calls; it is kept here as well for the one client the driver does not hand it to (the
 * port drivers', see app.ts).
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { randomBytes } from '../util/random.ts';
import { performance } from 'node:perf_hooks';
import type { Deadline } from '../util/deadline.ts';

export interface RequestContext {
  /** Unique per process run: a random per-process prefix and a sequence number, e.g. `3f9a1c-42`. */
  readonly id: string;
  /** The libnetwork method, e.g. `NetworkDriver.CreateEndpoint` (the path without its slash). */
  readonly method: string;
  /** `performance.now()` when the request arrived. */
  readonly startedAt: number;
  /** `process.cpuUsage()` when the request arrived. */
  readonly cpuAtStart: NodeJS.CpuUsage;
  /** Neutron API calls made while serving it (including any still running). */
  neutronCalls: number;
  /**
   * The request's deadline, which plugin/server.ts hands to the driver explicitly. Read from here only by the
   * composition root (app.ts) for the port drivers of containers in VMs, built once per process.
   */
  deadline?: Deadline;
}

const storage = new AsyncLocalStorage<RequestContext>();
const prefix = randomBytes(3).toString('hex');
let sequence = 0;

/** A new context for a request to `method`, started now. */
export function createRequestContext(method: string): RequestContext {
  sequence++;
  return {
    id: `${prefix}-${sequence}`,
    method,
    startedAt: performance.now(),
    cpuAtStart: process.cpuUsage(),
    neutronCalls: 0,
  };
}

/** Runs `fn` (and everything it awaits or schedules) inside `context`. */
export function runInRequestContext<T>(context: RequestContext, fn: () => T): T {
  return storage.run(context, fn);
}

/** The context of the request being served, or undefined outside any request (start-up, background work). */
export function currentRequest(): RequestContext | undefined {
  return storage.getStore();
}

/** Milliseconds since the request arrived, to the microsecond. */
export function elapsedMs(context: RequestContext): number {
  return Math.round((performance.now() - context.startedAt) * 1000) / 1000;
}

/**
 * Process CPU time (user + system, all threads) since the request arrived, in milliseconds. Exact for the
 * request when no other request overlaps it, as with Docker's calls for one container; an upper bound otherwise.
 */
export function cpuMs(context: RequestContext): number {
  const used = process.cpuUsage(context.cpuAtStart);
  return Math.round(used.user + used.system) / 1000;
}

/** What the access log and the metrics record of one finished request. */
export interface RequestSummary {
  id: string;
  /** The libnetwork method (`NetworkDriver.Join`); any path for an unknown one (see `code`). */
  method: string;
  /** HTTP status of the reply. */
  status: number;
  /** `KURYR_ERR_...` code of a failed request. */
  code?: string;
  ms: number;
  cpuMs: number;
  neutronCalls: number;
}
