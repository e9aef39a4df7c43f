/**
 * Segmentation IDs of containers' subports on the VM's trunk. Nothing is kept in memory: the trunk's
 * `sub_ports` are read before each choice, so a restarted plugin, or another plugin on the same trunk, never
 * reuses an ID in use. A per-trunk lock orders this process's own requests; Neutron's 409 on a taken ID (another
 * process chose it between our read and our write) makes us read again and choose another.
 */
import { BindingError, bindingErrorReasons } from '../../binding/errors.ts';
import { isConflict, isNotFound } from '../../neutron/errors.ts';
import type { NestedNeutronApi, SubPort } from '../../neutron/nested-api.ts';
import type { KeyedLock } from '../locks.ts';

const FIRST_ID = 1;
const LAST_ID = 4094;
const ATTEMPTS = 20;

/** The lowest VLAN ID that no subport of the trunk uses, or undefined when all 4094 are taken. */
export function freeSegmentationId(subports: readonly SubPort[]): number | undefined {
  const used = new Set(subports.filter((s) => s.segmentation_type === 'vlan').map((s) => s.segmentation_id));
  for (let id = FIRST_ID; id <= LAST_ID; id++) if (!used.has(id)) return id;
  return undefined;
}

export class Subports {
  readonly #neutron: Pick<NestedNeutronApi, 'showTrunk' | 'addSubports' | 'removeSubports'>;
  readonly #locks: KeyedLock;

  constructor(neutron: Pick<NestedNeutronApi, 'showTrunk' | 'addSubports' | 'removeSubports'>, locks: KeyedLock) {
    this.#neutron = neutron;
    this.#locks = locks;
  }

  /** Makes `portId` a VLAN subport of the trunk (or finds it one already) and returns its segmentation ID. */
  attach(trunkId: string, portId: string): Promise<number> {
    return this.#locks.run(`trunk:${trunkId}`, async () => {
      for (let attempt = 1; ; attempt++) {
        const trunk = await this.#neutron.showTrunk(trunkId);
        const mine = trunk.sub_ports.find((s) => s.port_id === portId);
        if (mine !== undefined) return mine.segmentation_id;
        const id = freeSegmentationId(trunk.sub_ports);
        if (id === undefined) {
          throw new BindingError(bindingErrorReasons.portDriverRefused, `trunk ${trunkId} has no free VLAN ID left`);
        }
        try {
          await this.#neutron.addSubports(trunkId, [
            { port_id: portId, segmentation_type: 'vlan', segmentation_id: id },
          ]);
          return id;
        } catch (err) {
          // 409 for a taken ID: another process chose it since our read; read again. Any other 409 (the port
          // is in use) is final.
          if (!isConflict(err) || attempt >= ATTEMPTS) throw err;
          const now = await this.#neutron.showTrunk(trunkId);
          if (now.sub_ports.some((s) => s.port_id === portId))
            return now.sub_ports.find((s) => s.port_id === portId)!.segmentation_id;
          if (!now.sub_ports.some((s) => s.segmentation_id === id)) throw err;
        }
      }
    });
  }

  /** Whether `portId` is a subport of the trunk now. */
  async isSubport(trunkId: string, portId: string): Promise<boolean> {
    return (await this.#neutron.showTrunk(trunkId)).sub_ports.some((s) => s.port_id === portId);
  }

  /** Removes `portId` from the trunk; a port that is no subport (any more) is not an error. */
  detach(trunkId: string, portId: string): Promise<void> {
    return this.#locks.run(`trunk:${trunkId}`, async () => {
      const trunk = await this.#neutron.showTrunk(trunkId);
      if (!trunk.sub_ports.some((s) => s.port_id === portId)) return;
      try {
        await this.#neutron.removeSubports(trunkId, [portId]);
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
    });
  }
}
