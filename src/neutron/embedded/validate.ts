/**
 * Request-body validation the way Neutron's API layer does it: unknown attributes rejected, strings limited
 * to 255 characters, booleans accepted as `true`/`"True"`/`"1"`, addresses and CIDRs normalised. Every failure
 * is a 400 `NeutronError`; nothing here touches the database.
 */
import { randomUUID } from '../../util/random.ts';
import { neutronErrors } from '../errors.ts';
import { isCidr, isIp, isMac, normalizeCidr, normalizeIp } from '../../util/ip.ts';

/** Neutron's limit for names, descriptions, device IDs/owners and tags. */
export const MAX_STRING_LENGTH = 255;

/** A request body seen as a plain record (bodies are typed, but callers may be JavaScript). */
export type Body = Readonly<Record<string, unknown>>;

/** A new resource ID: lowercase UUID. */
export function newId(): string {
  return randomUUID();
}

/** Neutron's timestamp form: `YYYY-MM-DDTHH:MM:SSZ`. */
export function timestamp(date: Date = new Date()): string {
  return `${date.toISOString().slice(0, 19)}Z`;
}

/** The body as a record; 400 when it is not an object. */
export function asBody(body: unknown, resource: string): Body {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw neutronErrors.badResourceRequest(resource, 'Resource body required');
  }
  return body as Body;
}

/** Reject attributes the resource does not have (`undefined` values count as absent). */
export function checkAttributes(body: Body, allowed: readonly string[]): void {
  const unknown = Object.keys(body).filter((k) => body[k] !== undefined && !allowed.includes(k));
  if (unknown.length > 0) throw neutronErrors.unrecognizedAttributes(unknown);
}

/** True when the attribute is present (not `undefined`). */
export function has(body: Body, key: string): boolean {
  return body[key] !== undefined;
}

/** Neutron's `convert_to_boolean`: booleans, `"true"`/`"false"` (any case), `"1"`/`"0"`, 1/0. */
export function toBoolean(value: unknown, attr: string): boolean {
  if (typeof value === 'boolean') return value;
  if (value === 1 || value === 0) return value === 1;
  if (typeof value === 'string') {
    const v = value.toLowerCase();
    if (v === 'true' || v === '1') return true;
    if (v === 'false' || v === '0') return false;
  }
  throw neutronErrors.invalidAttribute(attr, `'${String(value)}' cannot be converted to boolean`);
}

/** Optional boolean attribute. */
export function optBoolean(body: Body, key: string): boolean | undefined {
  return has(body, key) ? toBoolean(body[key], key) : undefined;
}

/** Optional string attribute of at most `max` characters. */
export function optString(body: Body, key: string, max = MAX_STRING_LENGTH): string | undefined {
  if (!has(body, key)) return undefined;
  return checkString(body[key], key, max);
}

/** A string of at most `max` characters. */
export function checkString(value: unknown, attr: string, max = MAX_STRING_LENGTH): string {
  if (typeof value !== 'string') throw neutronErrors.invalidAttribute(attr, `'${String(value)}' is not a valid string`);
  if (value.length > max) throw neutronErrors.invalidAttribute(attr, `'${value}' exceeds maximum length of ${max}`);
  return value;
}

/** An integer, also accepted as a decimal string (query-string style). */
export function toInteger(value: unknown, attr: string): number {
  const n = typeof value === 'string' && /^-?\d+$/.test(value.trim()) ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isInteger(n)) {
    throw neutronErrors.invalidAttribute(attr, `'${String(value)}' is not an integer`);
  }
  return n;
}

/** Optional integer attribute within [min, max]. */
export function optInteger(body: Body, key: string, min: number, max: number): number | undefined {
  if (!has(body, key)) return undefined;
  const n = toInteger(body[key], key);
  if (n < min || n > max) throw neutronErrors.invalidAttribute(key, `'${n}' is not in range ${min} through ${max}`);
  return n;
}

/** A plain IP address, normalised (`FD00::0001` → `fd00::1`). */
export function checkIp(value: unknown, attr: string): string {
  if (typeof value !== 'string' || !isIp(value)) {
    throw neutronErrors.invalidAttribute(attr, `'${String(value)}' is not a valid IP address`);
  }
  return normalizeIp(value);
}

/** A CIDR, normalised (host bits cleared, IPv6 compressed). */
export function checkCidr(value: unknown, attr: string): string {
  if (typeof value !== 'string' || !isCidr(value)) {
    throw neutronErrors.invalidAttribute(attr, `'${String(value)}' is not a valid IP subnet`);
  }
  return normalizeCidr(value);
}

/**
 * A unicast MAC address, kept as given: Neutron stores and answers `FA:16:3E:AA:BB:01` in the case it was
 * sent (uniqueness and the `mac_address` filter ignore case).
 */
export function checkMac(value: unknown, attr: string): string {
  if (typeof value !== 'string' || !isMac(value)) {
    throw neutronErrors.invalidAttribute(attr, `'${String(value)}' is not a valid MAC address`);
  }
  const firstOctet = Number.parseInt(value.slice(0, 2), 16);
  if ((firstOctet & 1) === 1 || /^0{2}(:0{2}){5}$/.test(value)) {
    throw neutronErrors.invalidAttribute(attr, `'${value}' is not a valid unicast MAC address`);
  }
  return value;
}

/** An array attribute (any element type; callers check the elements). */
export function checkArray(value: unknown, attr: string): readonly unknown[] {
  if (!Array.isArray(value)) throw neutronErrors.invalidAttribute(attr, `'${String(value)}' is not a list`);
  return value;
}

/** A plain JSON object attribute (e.g. `binding:profile`). */
export function checkObject(value: unknown, attr: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw neutronErrors.invalidAttribute(attr, `'${String(value)}' is not a dictionary`);
  }
  return value as Record<string, unknown>;
}

/** A tag: a string of at most 255 characters (`standard-attr-tag`). */
export function checkTag(tag: unknown): string {
  if (typeof tag !== 'string') throw neutronErrors.invalidInput(`'${String(tag)}' is not a valid string`);
  if (tag.length > MAX_STRING_LENGTH) {
    throw neutronErrors.invalidInput(`'${tag}' exceeds maximum length of ${MAX_STRING_LENGTH}`);
  }
  return tag;
}

/** A required attribute's value; 400 when it is missing. */
export function required(body: Body, key: string): unknown {
  if (!has(body, key)) throw neutronErrors.missingAttribute(key);
  return body[key];
}
