/**
 * The description of the Neutron networks we create: the Docker network's ID, its name once Docker knows it, and
 * the host whose plugin created it, so that an operator browsing Neutron (and reconciliation) can tell.
 */
import type { Network } from '../neutron/types.ts';
import { DOCKER_ID_PATTERN } from '../util/ids.ts';
import type { DriverSettings } from '../config/config.ts';
import { type DriverRuntime, errorMessage } from './context.ts';

/** Neutron's limit on descriptions. */
const DESCRIPTION_LIMIT = 255;

/** Who created a network: the host and the plugin instance (driver name) on it. */
export type Creator = Pick<DriverSettings, 'hostId' | 'driverName'>;

/**
 * Description of networks we create, `Docker network [NAME ]ID (kuryr-ts DRIVER on HOST)`: carries the whole
 * Docker ID so an untagged leftover can be recognised, and its creator so that reconciliation leaves other hosts'
 * and other instances' networks alone. The name is shortened so the whole fits Neutron's 255 characters.
 */
export function networkDescription(dockerId: string, creator: Creator, name?: string): string {
  const driver = creator.driverName === undefined ? '' : ` ${creator.driverName}`;
  const tail = `${dockerId} (kuryr-ts${driver} on ${creator.hostId})`;
  const room = DESCRIPTION_LIMIT - 'Docker network  '.length - tail.length;
  const shown = name === undefined || room < 1 ? '' : `${name.slice(0, room)} `;
  return `Docker network ${shown}${tail}`;
}

// Also the older formats: `(kuryr-ts on HOST)` (before the driver name) and `(kuryr-ts)` (before the host).
const DESCRIPTION = new RegExp(
  `^Docker network (?:[^\\s]+ )?(${DOCKER_ID_PATTERN}) \\(kuryr-ts(?: ([A-Za-z0-9][A-Za-z0-9_.-]*))?(?: on ([^)]+))?\\)$`,
);

/** The Docker ID in a description written by `networkDescription`, or undefined. */
export function dockerIdInDescription(description: string): string | undefined {
  return DESCRIPTION.exec(description)?.[1];
}

/**
 * The creator named by a description written by `networkDescription` (undefined: not such a description). With
 * a real Neutron several hosts, and several instances on one host, share the networks: reconciliation must leave
 * the others' Docker networks alone. Older descriptions name no driver, or no host either.
 */
export function creatorOf(description: string): { host?: string; driver?: string } | undefined {
  const match = DESCRIPTION.exec(description);
  if (match === null) return undefined;
  return {
    ...(match[3] === undefined ? {} : { host: match[3] }),
    ...(match[2] === undefined ? {} : { driver: match[2] }),
  };
}

/**
 * True for a network created by the instance `driver` on `host`. A description naming the host but no driver
 * (written before the driver name was recorded) counts as this host's, as it did then: the instance that made it
 * cannot be told any more.
 */
export function isCreatedBy(description: string, host: string, driver: string): boolean {
  const creator = creatorOf(description);
  return creator?.host === host && (creator.driver === undefined || creator.driver === driver);
}

/**
 * Records the Docker network's name in the description of the Neutron network we created, so an operator
 * browsing Neutron sees which Docker network it is. Docker stores a network only after CreateNetwork returns,
 * so this asks a little later, in the background; failures only cost the name.
 */
export function recordNetworkName(rt: DriverRuntime, dockerId: string, network: Network): void {
  const names = rt.names;
  if (names === undefined) return;
  const attempt = async (tries: number): Promise<void> => {
    const name = await names.networkName(dockerId).catch(() => undefined);
    if (name === undefined) {
      if (tries > 1) setTimeout(() => void attempt(tries - 1), NAME_RETRY_MS).unref();
      return;
    }
    const description = networkDescription(dockerId, rt.settings, name.replace(/\s+/g, '_').slice(0, 128));
    await rt.neutron.updateNetwork(network.id, { description }).catch((err: unknown) => {
      rt.log.debug({ err: errorMessage(err), network: network.id }, 'could not record the Docker network name');
    });
  };
  setTimeout(() => void attempt(NAME_TRIES), NAME_RETRY_MS).unref();
}

const NAME_RETRY_MS = 1000;
const NAME_TRIES = 5;
