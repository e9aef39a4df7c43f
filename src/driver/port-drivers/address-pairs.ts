/**
 * Adding and removing containers' addresses in the VM port's `allowed_address_pairs` without losing anyone's
 * update: the original reads the list, edits it and writes it back, so concurrent requests overwrite each
 * other. Here each change is a fresh read followed by a write guarded with `If-Match: revision_number=N`
 * (Neutron's `revision-if-match` extension); a 412 means someone else wrote in between, and the change is made
 * again on a new read. A per-port lock keeps this process's own requests from colliding at all, and the changes
 * that queue behind it are written together: ten containers started or removed at once cost two writes of the VM
 * port, not ten one after another (each a Neutron round trip that the last request would wait for).
 */
import { BindingError, bindingErrorReasons } from '../../binding/errors.ts';
import type { NeutronApi } from '../../neutron/api.ts';
import { isRevisionMismatch, type NestedNeutronApi } from '../../neutron/nested-api.ts';
import type { AllowedAddressPair } from '../../neutron/types.ts';
import type { KeyedLock } from '../locks.ts';

/** How many times one change is tried against a port others keep changing. */
const ATTEMPTS = 20;

/** An address as Neutron may store it in a pair (`10.0.0.5` or `10.0.0.5/32`), for comparison. */
function hostAddress(ip: string): string {
  return ip.replace(/\/(32|128)$/, '').toLowerCase();
}

function samePair(a: AllowedAddressPair, b: AllowedAddressPair): boolean {
  return (
    hostAddress(a.ip_address) === hostAddress(b.ip_address) &&
    a.mac_address.toLowerCase() === b.mac_address.toLowerCase()
  );
}

/** `current` with `add` appended (where missing) and every pair equal to one of `remove` dropped. */
export function editPairs(
  current: readonly AllowedAddressPair[],
  add: readonly AllowedAddressPair[],
  remove: readonly AllowedAddressPair[],
): AllowedAddressPair[] {
  const kept = current.filter((p) => !remove.some((r) => samePair(p, r)));
  for (const pair of add) if (!kept.some((p) => samePair(p, pair))) kept.push(pair);
  return kept;
}

export class AddressPairs {
  readonly #neutron: Pick<NeutronApi, 'showPort'> & Pick<NestedNeutronApi, 'updatePortIfRevision'>;
  readonly #locks: KeyedLock;
  readonly #sleep: (ms: number) => Promise<void>;

  constructor(
    neutron: Pick<NeutronApi, 'showPort'> & Pick<NestedNeutronApi, 'updatePortIfRevision'>,
    locks: KeyedLock,
    sleep: (ms: number) => Promise<void> = (ms) => new Promise((r) => setTimeout(r, ms)),
  ) {
    this.#neutron = neutron;
    this.#locks = locks;
    this.#sleep = sleep;
  }

  add(portId: string, pairs: readonly AllowedAddressPair[]): Promise<void> {
    return this.#change(portId, pairs, []);
  }

  remove(portId: string, pairs: readonly AllowedAddressPair[]): Promise<void> {
    return this.#change(portId, [], pairs);
  }

  /** Changes waiting for the port's lock; the next holder writes them all at once. */
  readonly #pending = new Map<string, PairChange[]>();

  #change(portId: string, add: readonly AllowedAddressPair[], remove: readonly AllowedAddressPair[]): Promise<void> {
    return new Promise((resolve, reject) => {
      const waiting = this.#pending.get(portId);
      const change: PairChange = { add, remove, resolve, reject };
      if (waiting !== undefined) {
        waiting.push(change);
        return;
      }
      this.#pending.set(portId, [change]);
      void this.#locks.run(`vm-port:${portId}`, async () => {
        const batch = this.#pending.get(portId) ?? [];
        this.#pending.delete(portId);
        await this.#writeBatch(portId, batch);
      });
    });
  }

  /**
   * One write for the whole batch. Should Neutron refuse it (not a revision race: a limit, a bad pair), each
   * change is written alone, so that the refusal reaches the request it belongs to and no other.
   */
  async #writeBatch(portId: string, batch: readonly PairChange[]): Promise<void> {
    try {
      await this.#write(portId, batch);
      for (const change of batch) change.resolve();
      return;
    } catch (err) {
      if (batch.length === 1) {
        batch[0]!.reject(err);
        return;
      }
    }
    for (const change of batch) {
      try {
        await this.#write(portId, [change]);
        change.resolve();
      } catch (err) {
        change.reject(err);
      }
    }
  }

  /** Reads the port and writes it with `changes` applied in order, again on a new read after a 412. */
  async #write(portId: string, changes: readonly Pick<PairChange, 'add' | 'remove'>[]): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const port = await this.#neutron.showPort(portId);
      const next = changes.reduce<AllowedAddressPair[]>(
        (pairs, change) => editPairs(pairs, change.add, change.remove),
        [...port.allowed_address_pairs],
      );
      const unchanged =
        next.length === port.allowed_address_pairs.length &&
        next.every((p, i) => {
          const q = port.allowed_address_pairs[i];
          return q !== undefined && samePair(p, q);
        });
      if (unchanged) return;
      try {
        await this.#neutron.updatePortIfRevision(portId, { allowed_address_pairs: next }, port.revision_number);
        return;
      } catch (err) {
        if (!isRevisionMismatch(err)) throw err;
        if (attempt >= ATTEMPTS) {
          throw new BindingError(
            bindingErrorReasons.portDriverRefused,
            `the allowed_address_pairs of the VM's port ${portId} changed under every one of ${ATTEMPTS} attempts`,
          );
        }
        // Someone else wrote between our read and our write: read again, after a short random pause.
        await this.#sleep(10 + Math.floor(Math.random() * 40 * attempt));
      }
    }
  }
}

/** One request's change of a VM port's pairs, and how to tell it the outcome. */
interface PairChange {
  add: readonly AllowedAddressPair[];
  remove: readonly AllowedAddressPair[];
  resolve: () => void;
  reject: (err: unknown) => void;
}
