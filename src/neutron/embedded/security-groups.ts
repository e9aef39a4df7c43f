/**
 * Security groups: new groups come with Neutron's two egress rules; each project's `default` group is created
 * lazily (first port that needs it, or first list), with ingress from the group itself; rules are created in
 * atomic bulk with duplicate detection; a group used by a port cannot be deleted.
 */
import type { ListFilter } from '../api.ts';
import { neutronErrors } from '../errors.ts';
import type { SecurityGroup, SecurityGroupCreate, SecurityGroupRule, SecurityGroupRuleCreate } from '../types.ts';
import { type StoreContext, selectRow, selectRows, touch } from './context.ts';
import { securityGroupFromRow } from './rows.ts';
import { insertRule, parseRule, type RuleValues, ruleKey } from './security-group-rules.ts';
import { asBody, checkAttributes, newId, optBoolean, optString, timestamp } from './validate.ts';

/** Read one security group with its rules (404 SecurityGroupNotFound). */
export function showSecurityGroup(ctx: StoreContext, id: string): SecurityGroup {
  return securityGroupFromRow(selectRow(ctx, 'security-groups', id));
}

function baseRules(groupId: string, projectId: string, fromSelf: boolean): RuleValues[] {
  const rule = (direction: 'ingress' | 'egress', ethertype: 'IPv4' | 'IPv6'): RuleValues => ({
    security_group_id: groupId,
    direction,
    ethertype,
    protocol: null,
    port_range_min: null,
    port_range_max: null,
    remote_ip_prefix: null,
    remote_group_id: direction === 'ingress' ? groupId : null,
    description: '',
    project_id: projectId,
  });
  const egress = [rule('egress', 'IPv4'), rule('egress', 'IPv6')];
  return fromSelf ? [...egress, rule('ingress', 'IPv4'), rule('ingress', 'IPv6')] : egress;
}

function insertGroup(
  ctx: StoreContext,
  projectId: string,
  name: string,
  description: string,
  stateful: boolean,
  isDefault: boolean,
): string {
  const id = newId();
  const now = timestamp();
  ctx.db.run(
    `INSERT INTO security_groups (id, project_id, name, description, stateful, created_at, updated_at)
     VALUES (?, ?, ?, ?, ?, ?, ?)`,
    [id, projectId, name, description, stateful ? 1 : 0, now, now],
  );
  for (const rule of baseRules(id, projectId, isDefault)) insertRule(ctx, rule);
  if (isDefault) {
    ctx.db.run('INSERT INTO default_security_groups (project_id, security_group_id) VALUES (?, ?)', [projectId, id]);
  }
  return id;
}

/** The project's `default` security group ID, created on first need as Neutron does. */
export function ensureDefaultSecurityGroup(ctx: StoreContext, projectId: string = ctx.projectId): string {
  const row = ctx.db.get('SELECT security_group_id FROM default_security_groups WHERE project_id = ?', [projectId]);
  if (row) return String(row.security_group_id);
  return insertGroup(ctx, projectId, 'default', 'Default security group', true, true);
}

/** `POST /v2.0/security-groups`: the name `default` is reserved for the project's default group (409). */
export function createSecurityGroup(ctx: StoreContext, body: SecurityGroupCreate): SecurityGroup {
  const b = asBody(body, 'security_groups');
  checkAttributes(b, ['name', 'description', 'stateful', 'project_id', 'tenant_id']);
  const projectId = optString(b, 'project_id') ?? optString(b, 'tenant_id') ?? ctx.projectId;
  const name = optString(b, 'name') ?? '';
  if (name === 'default') {
    ensureDefaultSecurityGroup(ctx, projectId);
    throw neutronErrors.securityGroupDefaultAlreadyExists();
  }
  const id = insertGroup(
    ctx,
    projectId,
    name,
    optString(b, 'description') ?? '',
    optBoolean(b, 'stateful') ?? true,
    false,
  );
  return showSecurityGroup(ctx, id);
}

/** `GET /v2.0/security-groups`: like Neutron, listing makes sure the project's default group exists. */
export function listSecurityGroups(ctx: StoreContext, filter?: ListFilter): SecurityGroup[] {
  ensureDefaultSecurityGroup(ctx);
  return selectRows(ctx, 'security-groups', filter).map(securityGroupFromRow);
}

/** `DELETE /v2.0/security-groups/<id>`: 409 SecurityGroupInUse while a port uses it; its rules go with it. */
export function deleteSecurityGroup(ctx: StoreContext, id: string): void {
  showSecurityGroup(ctx, id);
  if (ctx.db.get('SELECT 1 FROM port_security_groups WHERE security_group_id = ?', [id])) {
    throw neutronErrors.securityGroupInUse(id);
  }
  ctx.db.run('DELETE FROM security_groups WHERE id = ?', [id]);
}

/**
 * `POST /v2.0/security-group-rules` (bulk): 400 DuplicateSecurityGroupRuleInPost for a repeated rule in the
 * request, 409 SecurityGroupRuleExists for a rule the group already has. The caller's transaction makes it atomic.
 */
export function createSecurityGroupRules(
  ctx: StoreContext,
  bodies: readonly SecurityGroupRuleCreate[],
): SecurityGroupRule[] {
  const rules = bodies.map((body) => parseRule(ctx, body));
  const keys = new Set<string>();
  for (const rule of rules) {
    const key = ruleKey(rule);
    if (keys.has(key)) throw neutronErrors.duplicateSecurityGroupRuleInPost();
    keys.add(key);
  }
  const groupIds = [...new Set(rules.map((r) => r.security_group_id))];
  for (const groupId of groupIds) {
    for (const existing of showSecurityGroup(ctx, groupId).security_group_rules) {
      if (keys.has(ruleKey(existing))) throw neutronErrors.securityGroupRuleExists(existing.id);
    }
  }
  const ids = rules.map((rule) => insertRule(ctx, rule));
  for (const groupId of groupIds) touch(ctx, 'security-groups', groupId);
  const created = new Map(
    groupIds.flatMap((g) => showSecurityGroup(ctx, g).security_group_rules).map((r) => [r.id, r] as const),
  );
  return ids.map((id) => created.get(id) as SecurityGroupRule);
}
