/** Identifier formats. */

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** True for a lowercase 8-4-4-4-12 UUID, the form Neutron uses for every ID. */
export function isUuid(text: string): boolean {
  return UUID.test(text);
}

/** A Docker network or endpoint ID: 64 lowercase hex characters (local scope) or 25 (swarm), as a regex source. */
export const DOCKER_ID_PATTERN = '[0-9a-f]{64}|[0-9a-z]{25}';

const DOCKER_ID = new RegExp(`^(?:${DOCKER_ID_PATTERN})$`);

/** True for a Docker network or endpoint ID. */
export function isDockerId(text: string): boolean {
  return DOCKER_ID.test(text);
}
