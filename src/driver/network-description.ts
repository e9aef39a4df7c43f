/**
 * The description of the Neutron networks we create: the Docker network's ID, its name once Docker knows it, and
 * the host whose plugin created it, so that an operator browsing Neutron (and reconciliation) can tell.
 */
import type { Network } from '../neutron/types.ts';
import { DOCKER_ID_PATTERN } from '../util/ids.ts';
import { type DriverRuntime, errorMessage } from './context.ts';

/** Description of networks we create: carries the whole Docker ID so an untagged leftover can be recognised. */
export function networkDescription(dockerId: string, host: string, name?: string): string {
  return `Docker network ${name === undefined ? '' : `${name} `}${dockerId} (kuryr-ts on ${host})`;
}

const DESCRIPTION = new RegExp(`^Docker network (?:[^\\s]+ )?(${DOCKER_ID_PATTERN}) \\(kuryr-ts(?: on ([^)]+))?\\)$`);

/** The Docker ID in a description written by `networkDescription`, or undefined. */
export function dockerIdInDescription(description: string): string | undefined {
  return DESCRIPTION.exec(description)?.[1];
}

/**
 * The host whose plugin created the network, from its description. With a real Neutron several hosts share the
 * networks: reconciliation on one host must leave the other hosts' Docker networks alone.
 */
export function creatorOf(description: string): string | undefined {
  return DESCRIPTION.exec(description)?.[2];
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
    const description = networkDescription(dockerId, rt.settings.hostId, name.replace(/\s+/g, '_').slice(0, 128));
    await rt.neutron.updateNetwork(network.id, { description }).catch((err: unknown) => {
      rt.log.debug({ err: errorMessage(err), network: network.id }, 'could not record the Docker network name');
    });
  };
  setTimeout(() => void attempt(NAME_TRIES), NAME_RETRY_MS).unref();
}

const NAME_RETRY_MS = 1000;
const NAME_TRIES = 5;
