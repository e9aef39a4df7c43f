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
 * called, `rollbackBudgetMs` (from the same start) for undoing it. A signal and its timer are made when first asked
 * for: most requests never ask (the embedded store has nothing to abort), and a timer per request is CPU for
 * nothing. The timers are the global `setTimeout` (unref'd), so node:test's mock timers drive them as well;
 * `dispose` clears them, and a signal first asked for after it never aborts.
 */
export class RequestDeadline implements RequestBudget {
  readonly #workAt: number;
  readonly #rollbackAt: number;
  #work: TimedSignal | undefined;
  #rollback: TimedSignal | undefined;
  #rollingBack = false;
  #disposed = false;

  constructor(budgetMs: number, rollbackBudgetMs: number, startedAt = Date.now()) {
    this.#workAt = startedAt + budgetMs;
    this.#rollbackAt = startedAt + rollbackBudgetMs;
  }

  get at(): number {
    return this.#rollingBack ? this.#rollbackAt : this.#workAt;
  }

  get signal(): AbortSignal {
    if (this.#rollingBack) {
      this.#rollback ??= timedSignal(this.#rollbackAt, this.#disposed);
      return this.#rollback.controller.signal;
    }
    this.#work ??= timedSignal(this.#workAt, this.#disposed);
    return this.#work.controller.signal;
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
    this.#disposed = true;
    clearTimeout(this.#work?.timer);
    clearTimeout(this.#rollback?.timer);
  }

  /** Timers running (for tests). */
  get timers(): number {
    return (this.#work?.timer === undefined ? 0 : 1) + (this.#rollback?.timer === undefined ? 0 : 1);
  }
}

interface TimedSignal {
  at: number;
  controller: AbortController;
  timer: ReturnType<typeof setTimeout> | undefined;
}

/** A signal that aborts at `at` (at once when `at` has passed); never, when the request is over (`finished`). */
function timedSignal(at: number, finished = false): TimedSignal {
  const controller = new AbortController();
  if (finished) return { at, controller, timer: undefined };
  const left = at - Date.now();
  if (left <= 0) {
    controller.abort(new DeadlineExceeded(at));
    return { at, controller, timer: undefined };
  }
  const timer = setTimeout(() => controller.abort(new DeadlineExceeded(at)), left);
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
