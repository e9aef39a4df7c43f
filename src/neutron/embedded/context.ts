/**
 * What every resource module of the embedded store works with: the database, the store's project and
 * binding result, and the shared read/lookup/revision helpers. All functions run inside the caller's
 * transaction (see store.ts); none opens one.
 */
import type { ListFilter } from '../api.ts';
import { type NeutronError, neutronErrors } from '../errors.ts';
import type { Database, Param, Row } from './database.ts';
import { buildWhere } from './filters.ts';
import { type ResourceKind, SELECTS, TABLES } from './rows.ts';
import { timestamp } from './validate.ts';

/** The store's state shared by the resource modules. */
export interface StoreContext {
  db: Database;
  /** Owner of every resource created without an explicit project (Neutron: the token's project). */
  projectId: string;
  /** `binding:vif_type` a port gets when bound to a host. */
  vifType: string;
}

const NOT_FOUND: Readonly<Record<ResourceKind, (id: string) => NeutronError>> = {
  networks: neutronErrors.networkNotFound,
  subnets: neutronErrors.subnetNotFound,
  subnetpools: neutronErrors.subnetPoolNotFound,
  ports: neutronErrors.portNotFound,
  'security-groups': neutronErrors.securityGroupNotFound,
};

/** The 404 error of a resource kind. */
export function notFound(kind: ResourceKind, id: string): NeutronError {
  return NOT_FOUND[kind](id);
}

/** Rows of `kind` matching a Neutron list filter, in creation order. */
export function selectRows(ctx: StoreContext, kind: ResourceKind, filter?: ListFilter): Row[] {
  const where = buildWhere(kind, filter, ctx.vifType);
  return ctx.db.all(`${SELECTS[kind]} WHERE ${where.sql} ORDER BY r.rowid`, where.params);
}

/** The full row of one resource (with its dependent lists), or a 404 of the right type. */
export function selectRow(ctx: StoreContext, kind: ResourceKind, id: string): Row {
  const row = ctx.db.get(`${SELECTS[kind]} WHERE r.id = ?`, [id]);
  if (!row) throw notFound(kind, id);
  return row;
}

/** Throw the kind's 404 unless a resource with this ID exists. */
export function requireExists(ctx: StoreContext, kind: ResourceKind, id: unknown): string {
  if (typeof id !== 'string' || !ctx.db.get(`SELECT 1 FROM ${TABLES[kind]} WHERE id = ?`, [id])) {
    throw notFound(kind, String(id));
  }
  return id;
}

/** Bump `revision_number` and `updated_at` of a resource (every update, tag changes included). */
export function touch(ctx: StoreContext, kind: ResourceKind, id: string): void {
  ctx.db.run(`UPDATE ${TABLES[kind]} SET revision_number = revision_number + 1, updated_at = ? WHERE id = ?`, [
    timestamp(),
    id,
  ]);
}

/** Collects `column = ?` assignments for one `UPDATE`; `undefined` values are skipped. */
export class Assignments {
  private readonly columns: string[] = [];
  private readonly values: Param[] = [];

  /** Assign `value` to `column` unless it is undefined; booleans are stored as 0/1. */
  set(column: string, value: Param | boolean | undefined): this {
    if (value === undefined) return this;
    this.columns.push(`${column} = ?`);
    this.values.push(typeof value === 'boolean' ? (value ? 1 : 0) : value);
    return this;
  }

  /** Run the `UPDATE` (no-op when nothing was assigned). */
  apply(ctx: StoreContext, kind: ResourceKind, id: string): void {
    if (this.columns.length === 0) return;
    ctx.db.run(`UPDATE ${TABLES[kind]} SET ${this.columns.join(', ')} WHERE id = ?`, [...this.values, id]);
  }
}
