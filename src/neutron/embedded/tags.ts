/**
 * Tags (`standard-attr-tag`): idempotent add, 404 on removing an absent tag, replace-all. A change to a
 * resource's tag set bumps its revision and `updated_at`, as Neutron does.
 */
import { neutronErrors } from '../errors.ts';
import type { TaggedResource } from '../types.ts';
import { type StoreContext, touch } from './context.ts';
import { TABLES } from './rows.ts';
import { checkArray, checkTag } from './validate.ts';

const TAG_RESOURCES: readonly TaggedResource[] = ['networks', 'subnets', 'subnetpools', 'ports', 'security-groups'];

function checkResource(resource: TaggedResource): void {
  if (!TAG_RESOURCES.includes(resource)) {
    throw neutronErrors.badRequest(`tags are not supported on ${String(resource)}`);
  }
}

/** Neutron's tag controller answers 404 `TagResourceNotFound` (not `NetworkNotFound`, ...) for a missing resource. */
function requireTagged(ctx: StoreContext, resource: TaggedResource, id: string): void {
  if (!ctx.db.get(`SELECT 1 FROM ${TABLES[resource]} WHERE id = ?`, [id])) {
    throw neutronErrors.tagResourceNotFound(resource, id);
  }
}

/** A resource's tags, sorted. */
export function tagsOf(ctx: StoreContext, resource: TaggedResource, id: string): string[] {
  return ctx.db
    .all('SELECT tag FROM tags WHERE resource_type = ? AND resource_id = ? ORDER BY tag', [resource, id])
    .map((r) => String(r.tag));
}

/** `PUT /v2.0/<resource>/<id>/tags`: the stored set (deduplicated, sorted). */
export function replaceTags(
  ctx: StoreContext,
  resource: TaggedResource,
  id: string,
  tags: readonly string[],
): string[] {
  checkResource(resource);
  const wanted = [...new Set(checkArray(tags, 'tags').map(checkTag))].sort();
  requireTagged(ctx, resource, id);
  const current = tagsOf(ctx, resource, id);
  if (current.length === wanted.length && current.every((tag, i) => tag === wanted[i])) return current;
  ctx.db.run('DELETE FROM tags WHERE resource_type = ? AND resource_id = ?', [resource, id]);
  for (const tag of wanted) {
    ctx.db.run('INSERT INTO tags (resource_type, resource_id, tag) VALUES (?, ?, ?)', [resource, id, tag]);
  }
  touch(ctx, resource, id);
  return wanted;
}

/** `PUT /v2.0/<resource>/<id>/tags/<tag>`: adding a present tag changes nothing. */
export function addTag(ctx: StoreContext, resource: TaggedResource, id: string, tag: string): void {
  checkResource(resource);
  checkTag(tag);
  requireTagged(ctx, resource, id);
  const added = ctx.db.run('INSERT OR IGNORE INTO tags (resource_type, resource_id, tag) VALUES (?, ?, ?)', [
    resource,
    id,
    tag,
  ]);
  if (added > 0) touch(ctx, resource, id);
}

/** `DELETE /v2.0/<resource>/<id>/tags/<tag>`: 404 TagNotFound when absent. */
export function removeTag(ctx: StoreContext, resource: TaggedResource, id: string, tag: string): void {
  checkResource(resource);
  requireTagged(ctx, resource, id);
  const removed = ctx.db.run('DELETE FROM tags WHERE resource_type = ? AND resource_id = ? AND tag = ?', [
    resource,
    id,
    tag,
  ]);
  if (removed === 0) throw neutronErrors.tagNotFound(resource, id, tag);
  touch(ctx, resource, id);
}
