/**
 * `ListFilter` → SQL `WHERE` clause, with Neutron's semantics: exact matches, OR within a key, AND across
 * keys, the four tag filters, the ports' `fixed_ips` filter, and 400 for unknown keys (`filter-validation`).
 * Every condition is written so SQLite can answer it from an index (see schema.ts).
 */
import { neutronErrors } from '../errors.ts';
import type { FilterValue, ListFilter } from '../api.ts';
import { isCidr, isIp, normalizeIp, splitAddressWithPrefix } from '../../util/ip.ts';
import type { Param } from './database.ts';
import { PORT_STATUS_SQL, type ResourceKind } from './rows.ts';
import { toBoolean, toInteger } from './validate.ts';

type FilterType = 'text' | 'bool' | 'int' | 'ip' | 'cidr';

interface FilterSpec {
  /** SQL expression over the main table `r`; `$VIF` stands for the store's bound `vif_type`. */
  sql: string;
  type: FilterType;
}

const t = (sql: string, type: FilterType = 'text'): FilterSpec => ({ sql, type });

const COMMON: Record<string, FilterSpec> = {
  id: t('r.id'),
  name: t('r.name'),
  description: t('r.description'),
  project_id: t('r.project_id'),
  tenant_id: t('r.project_id'),
  revision_number: t('r.revision_number', 'int'),
  created_at: t('r.created_at'),
  updated_at: t('r.updated_at'),
};

const SPECS: Readonly<Record<ResourceKind, Record<string, FilterSpec>>> = {
  networks: {
    ...COMMON,
    admin_state_up: t('r.admin_state_up', 'bool'),
    shared: t('r.shared', 'bool'),
    mtu: t('r.mtu', 'int'),
    status: t(`'ACTIVE'`),
  },
  subnets: {
    ...COMMON,
    network_id: t('r.network_id'),
    subnetpool_id: t('r.subnetpool_id'),
    ip_version: t('r.ip_version', 'int'),
    cidr: t('r.cidr', 'cidr'),
    gateway_ip: t('r.gateway_ip', 'ip'),
    enable_dhcp: t('r.enable_dhcp', 'bool'),
    ipv6_address_mode: t('r.ipv6_address_mode'),
    ipv6_ra_mode: t('r.ipv6_ra_mode'),
  },
  subnetpools: {
    ...COMMON,
    ip_version: t('r.ip_version', 'int'),
    default_prefixlen: t('r.default_prefixlen', 'int'),
    min_prefixlen: t('r.min_prefixlen', 'int'),
    max_prefixlen: t('r.max_prefixlen', 'int'),
    shared: t('r.shared', 'bool'),
    is_default: t('r.is_default', 'bool'),
    address_scope_id: t('r.address_scope_id'),
  },
  ports: {
    ...COMMON,
    network_id: t('r.network_id'),
    admin_state_up: t('r.admin_state_up', 'bool'),
    // Case-insensitive, as Neutron's (the index is COLLATE NOCASE too).
    mac_address: t('r.mac_address COLLATE NOCASE'),
    device_id: t('r.device_id'),
    device_owner: t('r.device_owner'),
    status: t(PORT_STATUS_SQL),
    port_security_enabled: t('r.port_security_enabled', 'bool'),
    'binding:host_id': t('r.host_id'),
    'binding:vnic_type': t('r.vnic_type'),
    'binding:vif_type': t(`(CASE WHEN r.host_id <> '' THEN $VIF ELSE 'unbound' END)`),
  },
  'security-groups': {
    ...COMMON,
    stateful: t('r.stateful', 'bool'),
  },
};

/** Keys Neutron accepts on every list but that do not filter (`fields` is answered with whole objects). */
const IGNORED = new Set(['fields', 'limit', 'marker', 'sort_key', 'sort_dir', 'page_reverse']);
const TAG_KEYS = new Set(['tags', 'tags-any', 'not-tags', 'not-tags-any']);

/** A `WHERE` clause (without the keyword) and its parameters. */
export interface WhereClause {
  sql: string;
  params: Param[];
}

function valuesOf(value: FilterValue | readonly FilterValue[]): readonly FilterValue[] {
  return Array.isArray(value) ? value : [value as FilterValue];
}

function convert(value: FilterValue, spec: FilterSpec, key: string): Param {
  switch (spec.type) {
    case 'bool':
      return toBoolean(value, key) ? 1 : 0;
    case 'int':
      return toInteger(value, key);
    case 'ip':
      return isIp(String(value)) ? normalizeIp(String(value)) : String(value);
    case 'cidr': {
      // Canonical spelling only; host bits are kept, so `10.0.0.5/24` matches nothing (as in Neutron).
      if (!isCidr(String(value))) return String(value);
      const { address, prefixLength } = splitAddressWithPrefix(String(value));
      return `${address}/${prefixLength}`;
    }
    default:
      return String(value);
  }
}

const placeholders = (n: number) => Array.from({ length: n }, () => '?').join(', ');

function tagCondition(key: string, kind: ResourceKind, tags: string[], params: Param[]): string {
  const tagged = 'r.id IN (SELECT resource_id FROM tags WHERE tag = ? AND resource_type = ?)';
  if (key === 'tags-any' || key === 'not-tags-any') {
    params.push(...tags, kind);
    const any = `r.id IN (SELECT resource_id FROM tags WHERE tag IN (${placeholders(tags.length)}) AND resource_type = ?)`;
    return key === 'tags-any' ? any : `NOT ${any}`;
  }
  // "All of": one index lookup per tag (a GROUP BY ... HAVING COUNT would walk every tag of the resource type).
  for (const tag of tags) params.push(tag, kind);
  const all = tags.map(() => tagged).join(' AND ');
  return key === 'tags' ? `(${all})` : `NOT (${all})`;
}

function fixedIpConditions(values: readonly FilterValue[], params: Param[]): string[] {
  const subnets: string[] = [];
  const addresses: string[] = [];
  const substrings: string[] = [];
  for (const v of values) {
    const text = String(v);
    const eq = text.indexOf('=');
    const k = eq < 0 ? '' : text.slice(0, eq);
    const val = text.slice(eq + 1);
    if (k === 'subnet_id') subnets.push(val);
    else if (k === 'ip_address') addresses.push(isIp(val) ? normalizeIp(val) : val);
    else if (k === 'ip_address_substr') substrings.push(val);
    else throw neutronErrors.invalidInput(`'${text}' is not a valid fixed_ips filter`);
  }
  // Each kind is evaluated independently: some fixed IP has one of the addresses AND some is in one of the subnets.
  const conds: string[] = [];
  if (addresses.length > 0) {
    params.push(...addresses);
    conds.push(`r.id IN (SELECT port_id FROM ip_allocations WHERE ip_address IN (${placeholders(addresses.length)}))`);
  }
  if (subnets.length > 0) {
    params.push(...subnets);
    conds.push(`r.id IN (SELECT port_id FROM ip_allocations WHERE subnet_id IN (${placeholders(subnets.length)}))`);
  }
  for (const s of substrings) {
    params.push(`%${s.replace(/[\\%_]/g, (c) => `\\${c}`)}%`);
    conds.push(`r.id IN (SELECT port_id FROM ip_allocations WHERE ip_address LIKE ? ESCAPE '\\')`);
  }
  return conds;
}

function splitTags(values: readonly FilterValue[]): string[] {
  return [...new Set(values.flatMap((v) => String(v).split(',')).filter((tag) => tag !== ''))];
}

const sqlLiteral = (text: string) => `'${text.replace(/'/g, "''")}'`;

/** Translate a `ListFilter` for `kind` into a `WHERE` clause; 400 for keys the resource cannot be filtered by. */
export function buildWhere(kind: ResourceKind, filter: ListFilter | undefined, vifType: string): WhereClause {
  const specs = SPECS[kind];
  const conds: string[] = [];
  const params: Param[] = [];
  for (const [key, raw] of Object.entries(filter ?? {})) {
    if (raw === undefined || IGNORED.has(key)) continue;
    const values = valuesOf(raw);
    if (TAG_KEYS.has(key)) {
      const tags = splitTags(values);
      if (tags.length > 0) conds.push(tagCondition(key, kind, tags, params));
      continue;
    }
    if (key === 'fixed_ips' && kind === 'ports') {
      conds.push(...(values.length === 0 ? ['0'] : fixedIpConditions(values, params)));
      continue;
    }
    const spec = specs[key];
    if (!spec || !Object.hasOwn(specs, key)) throw neutronErrors.invalidFilter(key);
    if (values.length === 0) {
      conds.push('0'); // an empty OR matches nothing
      continue;
    }
    const converted = values.map((v) => convert(v, spec, key));
    params.push(...converted);
    const expr = spec.sql.replace('$VIF', sqlLiteral(vifType));
    conds.push(converted.length === 1 ? `${expr} = ?` : `${expr} IN (${placeholders(converted.length)})`);
  }
  return { sql: conds.length > 0 ? conds.join(' AND ') : '1', params };
}
