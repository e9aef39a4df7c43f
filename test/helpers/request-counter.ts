/**
 * Counts the HTTP requests a `NeutronHttpClient` sends (its `onRequest` dependency): every retry, replay and
 * page, per `METHOD /path/template`.
 */
export class RequestCounter {
  readonly counts = new Map<string, number>();

  /** Give this to the client: `new NeutronHttpClient(options, { onRequest: counter.onRequest })`. */
  readonly onRequest = (call: string): void => {
    this.counts.set(call, (this.counts.get(call) ?? 0) + 1);
  };

  /** Requests of one template. */
  get(call: string): number | undefined {
    return this.counts.get(call);
  }

  /** Requests of all templates together. */
  get total(): number {
    let n = 0;
    for (const v of this.counts.values()) n += v;
    return n;
  }

  reset(): void {
    this.counts.clear();
  }

  /** The counts as a plain object. */
  toObject(): Record<string, number> {
    return Object.fromEntries(this.counts);
  }
}
