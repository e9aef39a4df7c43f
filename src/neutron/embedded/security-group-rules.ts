/**
 * Security group rules: Neutron's validation (protocol names/numbers, port ranges, remote prefix vs.
 * ethertype) and its duplicate detection key (`_rule_to_key`), under which `tcp` equals `6` and a
 * `0.0.0.0/0` remote prefix equals none.
 */
import { neutronErrors } from '../errors.ts';
import type { SecurityGroupRule, SecurityGroupRuleCreate } from '../types.ts';
import { parseCidr } from '../../util/ip.ts';
import { requireExists, type StoreContext } from './context.ts';
import {
  asBody,
  type Body,
  checkAttributes,
  checkCidr,
  has,
  newId,
  optString,
  required,
  timestamp,
  toInteger,
} from './validate.ts';

/** IP protocol numbers of the names Neutron accepts in `protocol`. */
const PROTOCOL_NUMBERS: Readonly<Record<string, number>> = {
  ah: 51,
  dccp: 33,
  egp: 8,
  esp: 50,
  gre: 47,
  hopopt: 0,
  icmp: 1,
  icmpv6: 58,
  igmp: 2,
  ipip: 4,
  'ipv6-encap': 41,
  'ipv6-frag': 44,
  'ipv6-icmp': 58,
  'ipv6-nonxt': 59,
  'ipv6-opts': 60,
  'ipv6-route': 43,
  ospf: 89,
  pgm: 113,
  rsvp: 46,
  sctp: 132,
  tcp: 6,
  udp: 17,
  udplite: 136,
  vrrp: 112,
};
const PORT_PROTOCOLS = new Set([6, 17, 33, 132, 136]);
const ICMP_PROTOCOLS = new Set([1, 58]);

/** A validated rule, ready to insert. */
export type RuleValues = Omit<SecurityGroupRule, 'id' | 'tenant_id'>;

function parseProtocol(value: unknown): string | null {
  if (value === null || value === undefined || value === 'any') return null;
  const text = String(value).toLowerCase();
  if (/^\d+$/.test(text) && Number(text) <= 255) return String(Number(text));
  if (Object.hasOwn(PROTOCOL_NUMBERS, text)) return text;
  throw neutronErrors.securityGroupRuleInvalid(
    'SecurityGroupRuleInvalidProtocol',
    `Security group rule protocol ${String(value)} not supported. Only protocol values [${Object.keys(PROTOCOL_NUMBERS).join(', ')}] and integer representations [0 to 255] are supported.`,
  );
}

function protocolNumber(protocol: string | null): number | null {
  if (protocol === null) return null;
  return /^\d+$/.test(protocol) ? Number(protocol) : (PROTOCOL_NUMBERS[protocol] ?? null);
}

function optPort(b: Body, key: string): number | null {
  if (!has(b, key) || b[key] === null) return null;
  const n = toInteger(b[key], key);
  if (n < 0 || n > 65535) throw neutronErrors.invalidAttribute(key, `'${n}' is not in range 0 through 65535`);
  return n;
}

function checkPortRange(protocol: string | null, min: number | null, max: number | null): void {
  if (min === null && max === null) return;
  const proto = protocolNumber(protocol);
  if (proto === null) {
    throw neutronErrors.securityGroupRuleInvalid(
      'SecurityGroupProtocolRequiredWithPorts',
      'Must also specify protocol if port range is given.',
    );
  }
  if (PORT_PROTOCOLS.has(proto)) {
    if (min === 0 || max === 0)
      throw neutronErrors.securityGroupRuleInvalid('SecurityGroupInvalidPortValue', 'Invalid value for port 0.');
    if (min === null || max === null || min > max) {
      throw neutronErrors.securityGroupRuleInvalid(
        'SecurityGroupInvalidPortRange',
        'For TCP/UDP protocols, port_range_min must be <= port_range_max',
      );
    }
  } else if (ICMP_PROTOCOLS.has(proto)) {
    if ((min !== null && min > 255) || (max !== null && max > 255)) {
      throw neutronErrors.securityGroupRuleInvalid('SecurityGroupInvalidIcmpValue', 'Invalid ICMP type or code.');
    }
    if (min === null) {
      throw neutronErrors.securityGroupRuleInvalid(
        'SecurityGroupMissingIcmpType',
        `ICMP code (port-range-max) ${max} is provided but ICMP type (port-range-min) is missing.`,
      );
    }
  } else {
    throw neutronErrors.securityGroupRuleInvalid(
      'SecurityGroupInvalidProtocolForPort',
      `Invalid protocol ${protocol} for port range, only supported for TCP, UDP, UDPLITE, SCTP and DCCP protocols.`,
    );
  }
}

/** Validate one rule of a create request (404 for a missing group or remote group). */
export function parseRule(ctx: StoreContext, body: SecurityGroupRuleCreate): RuleValues {
  const b = asBody(body, 'security_group_rules');
  checkAttributes(b, [
    'security_group_id',
    'direction',
    'ethertype',
    'protocol',
    'port_range_min',
    'port_range_max',
    'remote_ip_prefix',
    'remote_group_id',
    'description',
    'project_id',
    'tenant_id',
  ]);
  const direction = required(b, 'direction');
  if (direction !== 'ingress' && direction !== 'egress') {
    throw neutronErrors.invalidAttribute('direction', `'${String(direction)}' is not in ['ingress', 'egress']`);
  }
  const etherText = has(b, 'ethertype') ? String(b.ethertype).toLowerCase() : 'ipv4';
  if (etherText !== 'ipv4' && etherText !== 'ipv6') {
    throw neutronErrors.invalidAttribute('ethertype', `'${String(b.ethertype)}' is not in ['IPv4', 'IPv6']`);
  }
  const ethertype = etherText === 'ipv4' ? 'IPv4' : 'IPv6';
  const securityGroupId = requireExists(ctx, 'security-groups', required(b, 'security_group_id'));
  const remoteGroupId = has(b, 'remote_group_id') && b.remote_group_id !== null ? String(b.remote_group_id) : null;
  if (remoteGroupId !== null) requireExists(ctx, 'security-groups', remoteGroupId);
  const prefix =
    has(b, 'remote_ip_prefix') && b.remote_ip_prefix !== null
      ? checkCidr(b.remote_ip_prefix, 'remote_ip_prefix')
      : null;
  if (prefix !== null && remoteGroupId !== null) {
    throw neutronErrors.securityGroupRuleInvalid(
      'SecurityGroupRemoteGroupAndRemoteIpPrefix',
      'Only remote_ip_prefix or remote_group_id may be provided.',
    );
  }
  if (prefix !== null && `IPv${parseCidr(prefix).version}` !== ethertype) {
    throw neutronErrors.securityGroupRuleInvalid(
      'SecurityGroupRuleParameterConflict',
      `Conflicting value ethertype ${ethertype} for CIDR ${prefix}`,
    );
  }
  const protocol = parseProtocol(b.protocol);
  const min = optPort(b, 'port_range_min');
  const max = optPort(b, 'port_range_max');
  checkPortRange(protocol, min, max);
  return {
    security_group_id: securityGroupId,
    direction,
    ethertype,
    protocol,
    port_range_min: min,
    port_range_max: max,
    remote_ip_prefix: prefix,
    remote_group_id: remoteGroupId,
    description: optString(b, 'description') ?? '',
    project_id: optString(b, 'project_id') ?? optString(b, 'tenant_id') ?? ctx.projectId,
  };
}

/** Neutron's `_rule_to_key`: the attributes that make two rules the same rule. */
export function ruleKey(rule: RuleValues): string {
  const anyPrefix =
    rule.remote_ip_prefix === null || rule.remote_ip_prefix === '0.0.0.0/0' || rule.remote_ip_prefix === '::/0';
  return JSON.stringify([
    rule.security_group_id,
    rule.direction,
    rule.ethertype,
    rule.port_range_min,
    rule.port_range_max,
    protocolNumber(rule.protocol),
    rule.remote_group_id,
    anyPrefix ? null : rule.remote_ip_prefix,
  ]);
}

/** Insert a validated rule; returns its ID. */
export function insertRule(ctx: StoreContext, rule: RuleValues): string {
  const id = newId();
  ctx.db.run(
    `INSERT INTO security_group_rules (id, project_id, security_group_id, direction, ethertype, protocol,
       port_range_min, port_range_max, remote_ip_prefix, remote_group_id, description, created_at)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    [
      id,
      rule.project_id,
      rule.security_group_id,
      rule.direction,
      rule.ethertype,
      rule.protocol,
      rule.port_range_min,
      rule.port_range_max,
      rule.remote_ip_prefix,
      rule.remote_group_id,
      rule.description,
      timestamp(),
    ],
  );
  return id;
}
