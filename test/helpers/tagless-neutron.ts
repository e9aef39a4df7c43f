/**
 * A `NeutronApi` decorator that makes any backend (usually the in-memory embedded store) look like a Neutron
 * without `standard-attr-tag`, with only the legacy tag extensions kuryr knows as its two flags:
 *
 * - `tag` (kuryr's `tag` flag): networks take tags;
 * - `tag-ext` (kuryr's `tag_ext` flag): subnets, ports, subnet pools (and security groups) take tags;
 * - neither: nothing takes tags.
 *
 *   const store = openEmbeddedNeutron({ path: ':memory:' });
 *   const neutron = taglessNeutron(store, { tag: true, tagExt: false });
 *   // ... run the driver against `neutron` ...
 *   assert.deepEqual(neutron.violations, []);
 *
 * For a resource whose extension is missing, as such a Neutron answers:
 * - `replaceTags` / `addTag` / `removeTag` reject with a 404 `HTTPNotFound` (the route does not exist);
 * - a list filtered by `tags`, `tags-any`, `not-tags` or `not-tags-any` rejects with a 400 `HTTPBadRequest`
 *   (`tags is invalid attribute for filtering`); a filter whose value carries no tag (`undefined`, `[]`, `''`)
 *   is not sent by the HTTP client either, so it is not one;
 * - a create/update body with a `tags` attribute rejects with a 400 (`Unrecognized attribute(s) 'tags'`);
 * - every object returned has `tags: []` (Neutron omits the attribute; `types.ts` requires it).
 * None of these reaches the wrapped backend, and each is recorded in `violations`
 * (`replaceTags ports <id>`, `addTag networks <id> <tag>`, `listPorts filter tags`, `createPort body tags`).
 *
 * `listExtensions()` never lists `standard-attr-tag` (nor `tag-ports-during-bulk-creation`, which needs it),
 * lists `tag` / `tag-ext` exactly when supported (synthetic entries when the backend does not list them).
 * Everything else passes through unchanged, called on the wrapped object (its `this` preserved).
 */
import type { TagSupport } from '../../src/driver/marks.ts';
import type { ListFilter, NeutronApi } from '../../src/neutron/api.ts';
import { NeutronError, neutronErrors } from '../../src/neutron/errors.ts';
import type { Extension, TaggedResource } from '../../src/neutron/types.ts';

/** Which legacy tag extensions the simulated Neutron has: kuryr's `tag` and `tag_ext` flags, as the driver sees them. */
export type { TagSupport };

export interface TaglessNeutron extends NeutronApi {
  /** Every attempt to use a tag feature the simulated Neutron lacks, in call order. */
  readonly violations: string[];
}

/** The list filters that need a tag extension. */
export const TAG_FILTER_KEYS = ['tags', 'tags-any', 'not-tags', 'not-tags-any'] as const;

/** Extensions hidden whatever the support: full tag support, and what depends on it. */
const ALWAYS_HIDDEN = new Set(['standard-attr-tag', 'tag-ports-during-bulk-creation']);

/** As a Neutron with the legacy extensions lists them. */
const LEGACY_EXTENSIONS: Readonly<Record<'tag' | 'tag-ext', Extension>> = {
  tag: { alias: 'tag', name: 'Tag support', description: 'Enables to set tag on resources.' },
  'tag-ext': {
    alias: 'tag-ext',
    name: 'Tag support for resources: subnet, subnetpool, port, router',
    description: 'Extends tag support to more L2 and L3 resources.',
  },
};

/** The 404 a Neutron answers for a route it does not have (`/v2.0/<resource>/<id>/tags...`). */
export function routeNotFound(): NeutronError {
  return new NeutronError(404, 'HTTPNotFound', 'The resource could not be found.');
}

/** Wraps `api` as a Neutron with only the tag extensions `support` names; see the module comment. */
export function taglessNeutron(api: NeutronApi, support: TagSupport): TaglessNeutron {
  const violations: string[] = [];
  const supported = (resource: TaggedResource): boolean => (resource === 'networks' ? support.tag : support.tagExt);

  /** Rejects (and records) a tag filter on a resource without tags. */
  const checkFilter = (method: string, resource: TaggedResource, filter: ListFilter | undefined): void => {
    if (filter === undefined || supported(resource)) return;
    const used = TAG_FILTER_KEYS.filter((key) => {
      const value = filter[key];
      if (value === undefined) return false;
      const values = Array.isArray(value) ? value : [value];
      return values.some((v) =>
        String(v)
          .split(',')
          .some((t) => t !== ''),
      );
    });
    if (used.length === 0) return;
    for (const key of used) violations.push(`${method} filter ${key}`);
    throw neutronErrors.invalidFilter(used[0] as string);
  };

  /** Rejects (and records) a request body with a `tags` attribute on a resource without tags. */
  const checkBodies = (method: string, resource: TaggedResource, bodies: readonly unknown[]): void => {
    if (supported(resource)) return;
    const tagged = bodies.some(
      (b) => typeof b === 'object' && b !== null && (b as Record<string, unknown>).tags !== undefined,
    );
    if (!tagged) return;
    violations.push(`${method} body tags`);
    throw neutronErrors.unrecognizedAttributes(['tags']);
  };

  const strip = <T extends { tags: string[] }>(resource: TaggedResource, item: T): T =>
    supported(resource) ? item : { ...item, tags: [] };
  const stripAll = <T extends { tags: string[] }>(resource: TaggedResource, items: readonly T[]): T[] =>
    supported(resource) ? (items as T[]) : items.map((item) => ({ ...item, tags: [] }));

  const checkTagCall = (call: string, resource: TaggedResource): void => {
    if (supported(resource)) return;
    violations.push(call);
    throw routeNotFound();
  };

  // As countingNeutron does: a fresh object (never a spread of `api`, which may be a class instance whose methods
  // live on its prototype), every method calling the wrapped one on `api` itself. Typed as the whole interface:
  // a method added to NeutronApi fails to compile here until it is given a rule or a pass-through.
  const wrapper: TaglessNeutron = {
    violations,

    async listExtensions() {
      const hidden = new Set(ALWAYS_HIDDEN);
      if (!support.tag) hidden.add('tag');
      if (!support.tagExt) hidden.add('tag-ext');
      const out = (await api.listExtensions()).filter((e) => !hidden.has(e.alias));
      for (const [alias, on] of [
        ['tag', support.tag],
        ['tag-ext', support.tagExt],
      ] as const) {
        if (on && !out.some((e) => e.alias === alias)) out.push({ ...LEGACY_EXTENSIONS[alias] });
      }
      return out;
    },

    async listNetworks(filter) {
      checkFilter('listNetworks', 'networks', filter);
      return stripAll('networks', await api.listNetworks(filter));
    },
    async showNetwork(id) {
      return strip('networks', await api.showNetwork(id));
    },
    async createNetwork(body) {
      checkBodies('createNetwork', 'networks', [body]);
      return strip('networks', await api.createNetwork(body));
    },
    async updateNetwork(id, body) {
      checkBodies('updateNetwork', 'networks', [body]);
      return strip('networks', await api.updateNetwork(id, body));
    },
    deleteNetwork: (id) => api.deleteNetwork(id),

    async listSubnets(filter) {
      checkFilter('listSubnets', 'subnets', filter);
      return stripAll('subnets', await api.listSubnets(filter));
    },
    async showSubnet(id) {
      return strip('subnets', await api.showSubnet(id));
    },
    async createSubnets(bodies) {
      checkBodies('createSubnets', 'subnets', bodies);
      return stripAll('subnets', await api.createSubnets(bodies));
    },
    async updateSubnet(id, body) {
      checkBodies('updateSubnet', 'subnets', [body]);
      return strip('subnets', await api.updateSubnet(id, body));
    },
    deleteSubnet: (id) => api.deleteSubnet(id),

    async listSubnetPools(filter) {
      checkFilter('listSubnetPools', 'subnetpools', filter);
      return stripAll('subnetpools', await api.listSubnetPools(filter));
    },
    async showSubnetPool(id) {
      return strip('subnetpools', await api.showSubnetPool(id));
    },
    async createSubnetPool(body) {
      checkBodies('createSubnetPool', 'subnetpools', [body]);
      return strip('subnetpools', await api.createSubnetPool(body));
    },
    async updateSubnetPool(id, body) {
      checkBodies('updateSubnetPool', 'subnetpools', [body]);
      return strip('subnetpools', await api.updateSubnetPool(id, body));
    },
    deleteSubnetPool: (id) => api.deleteSubnetPool(id),

    async listPorts(filter) {
      checkFilter('listPorts', 'ports', filter);
      return stripAll('ports', await api.listPorts(filter));
    },
    async showPort(id) {
      return strip('ports', await api.showPort(id));
    },
    async createPort(body) {
      checkBodies('createPort', 'ports', [body]);
      return strip('ports', await api.createPort(body));
    },
    async updatePort(id, body) {
      checkBodies('updatePort', 'ports', [body]);
      return strip('ports', await api.updatePort(id, body));
    },
    deletePort: (id) => api.deletePort(id),

    async listSecurityGroups(filter) {
      checkFilter('listSecurityGroups', 'security-groups', filter);
      return stripAll('security-groups', await api.listSecurityGroups(filter));
    },
    async createSecurityGroup(body) {
      checkBodies('createSecurityGroup', 'security-groups', [body]);
      return strip('security-groups', await api.createSecurityGroup(body));
    },
    deleteSecurityGroup: (id) => api.deleteSecurityGroup(id),
    createSecurityGroupRules: (bodies) => api.createSecurityGroupRules(bodies),

    async replaceTags(resource, id, tags) {
      checkTagCall(`replaceTags ${resource} ${id}`, resource);
      return api.replaceTags(resource, id, tags);
    },
    async addTag(resource, id, tag) {
      checkTagCall(`addTag ${resource} ${id} ${tag}`, resource);
      return api.addTag(resource, id, tag);
    },
    async removeTag(resource, id, tag) {
      checkTagCall(`removeTag ${resource} ${id} ${tag}`, resource);
      return api.removeTag(resource, id, tag);
    },
  };

  return wrapper;
}
