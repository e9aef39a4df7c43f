/**
 * Deadlines as AbortSignals: the time by which some work must be over, and a signal that aborts then. The
 * protocol layer (plugin/server.ts) makes one per libnetwork request and hands it to the driver, which hands it
 * to its Neutron calls (`withDeadline` of neutron/api.ts): the HTTP client bounds its attempts and retry sleeps
 * by it, the embedded store has nothing to abort.
 */

export interface Deadline {
  /** Epoch milliseconds (`Date.now()` scale) by which the work must be over. */
  readonly at: number;
  /** Aborts at `at`. */
  readonly signal: AbortSignal;
}

/** A request's deadline as the driver sees it: it may ask for the longer rollback budget. */
export interface RequestBudget extends Deadline {
  /** From now on the work undoes what it did: `at` and `signal` become the rollback budget's. */
  enterRollback(): void;
}

/**
 * The deadline of one request that started at `startedAt`: `budgetMs` for the work and, once `enterRollback` is
 * called, `rollbackBudgetMs` (from the same start) for undoing it. The signals are driven by the global
 * `setTimeout` (unref'd), so node:test's mock timers drive them as well; `dispose` clears the timers.
 */
export class RequestDeadline implements RequestBudget {
  readonly #work: TimedSignal;
  readonly #rollback: TimedSignal;
  #rollingBack = false;

  constructor(budgetMs: number, rollbackBudgetMs: number, startedAt = Date.now()) {
    this.#work = timedSignal(startedAt + budgetMs);
    this.#rollback = timedSignal(startedAt + rollbackBudgetMs);
  }

  get at(): number {
    return (this.#rollingBack ? this.#rollback : this.#work).at;
  }

  get signal(): AbortSignal {
    return (this.#rollingBack ? this.#rollback : this.#work).controller.signal;
  }

  /** True once `enterRollback` was called. */
  get rollingBack(): boolean {
    return this.#rollingBack;
  }

  enterRollback(): void {
    this.#rollingBack = true;
  }

  /** Clears the timers (the request is over); the signals stay as they are. */
  dispose(): void {
    clearTimeout(this.#work.timer);
    clearTimeout(this.#rollback.timer);
  }
}

interface TimedSignal {
  at: number;
  controller: AbortController;
  timer: ReturnType<typeof setTimeout>;
}

function timedSignal(at: number): TimedSignal {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new DeadlineExceeded(at)), Math.max(0, at - Date.now()));
  timer.unref?.();
  return { at, controller, timer };
}

/** The reason of a deadline's signal. */
export class DeadlineExceeded extends Error {
  override readonly name = 'DeadlineExceeded';
  constructor(at: number) {
    super(`deadline of ${new Date(at).toISOString()} passed`);
  }
}
