/** Identifier formats. */

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** True for a lowercase 8-4-4-4-12 UUID, the form Neutron uses for every ID. */
export function isUuid(text: string): boolean {
  return UUID.test(text);
}
