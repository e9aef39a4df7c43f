/**
 * `NeutronHttpClient`: the `NeutronApi` over a real Neutron's v2.0 REST API.
 *
 * One method, one Neutron call (lists: one call per page, following `<collection>_links` next links). Filters
 * are written as Neutron reads them; errors are `NeutronError`s with Neutron's status, type, message and
 * request ID. Authentication, retries and TLS live in keystone.ts and transport.ts.
 */
import type { Logger } from '../../observability/logger.ts';
import type { Deadline } from '../../util/deadline.ts';
import { KuryrError } from '../../errors.ts';
import type { FilterValue, ListFilter, NeutronApi } from '../api.ts';
import type { NestedNeutronApi, SubPort, Trunk } from '../nested-api.ts';
import type {
  Extension,
  Network,
  NetworkCreate,
  NetworkUpdate,
  Port,
  PortCreate,
  PortUpdate,
  SecurityGroup,
  SecurityGroupCreate,
  SecurityGroupRule,
  SecurityGroupRuleCreate,
  Subnet,
  SubnetCreate,
  SubnetPool,
  SubnetPoolCreate,
  SubnetPoolUpdate,
  SubnetUpdate,
  TaggedResource,
} from '../types.ts';
import type { NeutronClientOptions } from './config.ts';
import { neutronErrorFromResponse } from './errors.ts';
import { type AuthProvider, createAuthProvider } from './keystone.ts';
import { describeCall, type HttpMethod, HttpTransport, type TransportResponse } from './transport.ts';

const TAG_FILTERS = new Set(['tags', 'tags-any', 'not-tags', 'not-tags-any']);

/** Answer keys of the resources that take tags. */
const TAGGED_KEYS = new Set([
  'network',
  'networks',
  'subnet',
  'subnets',
  'subnetpool',
  'subnetpools',
  'port',
  'ports',
  'security_group',
  'security_groups',
]);

/** A Neutron without the tag extension (or a `fields=` list without `tags`) omits `tags`: read as none. */
function withTagList(value: unknown): unknown {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return value;
  return 'tags' in value && Array.isArray(value.tags) ? value : { ...value, tags: [] };
}
/** Most pages one list may take (a guard against a server that links in a circle). */
const MAX_PAGES = 10_000;

/** Query-string encoding that keeps `:` readable (`binding:host_id`, IPv6 addresses); `=`, `&`, `,` are encoded. */
function encode(text: string): string {
  return encodeURIComponent(text).replace(/%3A/gi, ':');
}

/** A path segment: percent-encoded, and never `.`/`..` (which URL handling would resolve away). */
export function encodeSegment(text: string): string {
  if (text === '.' || text === '..') return text.replace(/\./g, '%2E');
  return encodeURIComponent(text).replace(/%3A/gi, ':');
}

function formatValue(value: FilterValue): string {
  if (typeof value === 'boolean') return value ? 'True' : 'False';
  return String(value);
}

/**
 * The query string for a `ListFilter`, or `null` when the filter can match nothing (an empty list of values:
 * Neutron would ignore the key and answer the unfiltered list, so no call is made).
 * - arrays repeat the key (`id=a&id=b`); booleans are `True`/`False`;
 * - the four tag filters take one comma-separated value (`tags=a,b`), whether given as `'a,b'` or `['a', 'b']`;
 * - `fixed_ips` entries are encoded whole (`fixed_ips=subnet_id%3D<id>`);
 * - `fields` always includes `id` (the `ListFilter` promise).
 */
export function buildQuery(filter: ListFilter | undefined): string | null {
  const parts: string[] = [];
  for (const [key, raw] of Object.entries(filter ?? {})) {
    if (raw === undefined) continue;
    const values: readonly FilterValue[] = Array.isArray(raw) ? raw : [raw as FilterValue];
    if (TAG_FILTERS.has(key)) {
      const tags = [...new Set(values.flatMap((v) => String(v).split(',')).filter((t) => t !== ''))];
      if (tags.length > 0) parts.push(`${encode(key)}=${tags.map(encode).join(',')}`);
      continue;
    }
    if (key === 'fields') {
      const fields = values.map(String);
      if (fields.length === 0) continue;
      if (!fields.includes('id')) fields.unshift('id');
      for (const f of fields) parts.push(`fields=${encode(f)}`);
      continue;
    }
    if (values.length === 0) return null;
    for (const v of values) parts.push(`${encode(key)}=${encode(formatValue(v))}`);
  }
  return parts.join('&');
}

/** Per-call options of the internal request helper. */
interface CallOptions {
  query?: string;
  body?: unknown;
  deadline?: number;
  /** Headers besides the token (`If-Match`). */
  headers?: Readonly<Record<string, string>>;
}

/** A successful answer; its body is parsed only by the calls that read it. */
interface Answer {
  status: number;
  body: string;
  /** `Neutron METHOD /path` for messages. */
  call: string;
}

export interface NeutronHttpClientDeps {
  /** Debug log of each call (method, path template, status, duration); never tokens or bodies. */
  logger?: Logger;
  /** Clock for token expiry (tests). */
  now?: () => number;
  /** Random source for retry jitter (tests). */
  random?: () => number;
  /** Where the proxy variables (`https_proxy`, `no_proxy`, ...) are read; default `process.env`. */
  env?: NodeJS.ProcessEnv;
  /**
   * Told of every HTTP request sent to Neutron, each retry, replay and page, as `METHOD /path/template`: the round
   * trips below the `NeutronApi` calls that neutron/counting.ts counts (tests and benchmarks count them).
   */
  onRequest?: (call: string) => void;
}

/** `NeutronApi` over HTTP. Create once per process and `close()` it at shutdown. */
export class NeutronHttpClient implements NeutronApi, NestedNeutronApi {
  private readonly options: NeutronClientOptions;
  private readonly transport: HttpTransport;
  private readonly auth: AuthProvider;
  private readonly log: Logger | undefined;
  private readonly onRequest: ((call: string) => void) | undefined;
  /** The deadline of the work these calls serve (a plugin request), set on the views of `withDeadline`. */
  private readonly bound: Deadline | undefined;

  constructor(options: NeutronClientOptions, deps: NeutronHttpClientDeps = {}) {
    this.options = options;
    this.transport = new HttpTransport({
      tls: options.tls,
      timeoutMs: options.timeoutMs,
      retry: options.retry,
      maxSockets: options.maxSockets,
      ...(deps.random === undefined ? {} : { random: deps.random }),
      ...(deps.env === undefined ? {} : { env: deps.env }),
    });
    this.auth = createAuthProvider(options, this.transport, deps.now);
    this.log = deps.logger;
    this.onRequest = deps.onRequest;
  }

  /**
   * This client for the calls of one piece of work (a plugin request): they share everything with it (connections,
   * token, counts) and end by `deadline`, each within its own time limit too.
   */
  withDeadline(deadline: Deadline): NeutronHttpClient {
    return Object.create(this, { bound: { value: deadline } }) as NeutronHttpClient;
  }

  /** Token requests sent to Keystone so far. */
  get tokenRequests(): number {
    return this.auth.tokenRequests;
  }

  /** Close pooled connections. */
  async close(): Promise<void> {
    this.transport.close();
  }

  // ---- plumbing ------------------------------------------------------------------------------------------------

  /**
   * Send one Neutron request. `template` names the call for counting (`/v2.0/ports/{id}`); `path` is the real
   * path. A 401 renews the token and replays the request once.
   */
  private async call(method: HttpMethod, template: string, path: string, opts: CallOptions = {}): Promise<Answer> {
    const deadline = this.within(opts.deadline ?? Date.now() + this.options.deadlineMs);
    const key = `${method} ${template}`;
    const onRequest = this.onRequest;
    const body = opts.body === undefined ? undefined : JSON.stringify(opts.body);
    const started = Date.now();
    for (let replayed = false; ; replayed = true) {
      const creds = await this.auth.credentials(deadline);
      const url = new URL(creds.endpoint);
      const fullPath = `${url.pathname.replace(/\/+$/, '')}${path}${opts.query ? `?${opts.query}` : ''}`;
      const res: TransportResponse = await this.transport.request({
        method,
        url,
        path: fullPath,
        service: 'Neutron',
        deadline,
        ...(this.bound === undefined ? {} : { signal: this.bound.signal }),
        ...(onRequest === undefined ? {} : { onAttempt: () => onRequest(key) }),
        headers: { ...opts.headers, ...(creds.token === undefined ? {} : { 'X-Auth-Token': creds.token }) },
        ...(body === undefined ? {} : { body }),
      });
      this.log?.debug(
        { call: key, status: res.status, attempts: res.attempts, ms: Date.now() - started },
        'neutron call',
      );
      if (res.status === 401 && !replayed && this.auth.invalidate(creds.token)) continue;
      const call = describeCall('Neutron', method, url, fullPath);
      if (res.status >= 400) throw neutronErrorFromResponse(res, call);
      return { status: res.status, body: res.body, call };
    }
  }

  /** The earlier of a call's own deadline and the deadline it is bound to (`withDeadline`). */
  private within(deadline: number): number {
    return this.bound === undefined ? deadline : Math.min(deadline, this.bound.at);
  }

  /** The JSON object of an answer (calls that only need the status never parse: tag PUTs answer `null`). */
  private parse(answer: Answer): Record<string, unknown> {
    let doc: unknown;
    try {
      doc = JSON.parse(answer.body);
    } catch {
      throw new KuryrError('KURYR_ERR_NEUTRON', `${answer.call}: the ${answer.status} answer is not JSON`);
    }
    if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
      throw new KuryrError('KURYR_ERR_NEUTRON', `${answer.call}: the ${answer.status} answer is not a JSON object`);
    }
    return doc as Record<string, unknown>;
  }

  private pick<T>(answer: Answer, key: string, doc = this.parse(answer)): T {
    const value = doc[key];
    if (value === undefined || value === null) {
      throw new KuryrError('KURYR_ERR_NEUTRON', `${answer.call}: the answer has no "${key}"`);
    }
    return value as T;
  }

  /**
   * A resource (or a list of them) from an answer, with `tags: []` where Neutron has no tag extension (only for
   * the resources that take tags: not extensions, not security group rules; not when `fields=` chose them).
   */
  private resource<T>(answer: Answer, key: string, doc = this.parse(answer), chosenFields = false): T {
    const value = this.pick<unknown>(answer, key, doc);
    if (chosenFields || !TAGGED_KEYS.has(key)) return value as T;
    return (Array.isArray(value) ? value.map(withTagList) : withTagList(value)) as T;
  }

  private async list<T>(collection: string, key: string, filter: ListFilter | undefined): Promise<T[]> {
    const query = buildQuery(filter);
    if (query === null) return [];
    const path = `/v2.0/${collection}`;
    const deadline = this.within(Date.now() + this.options.deadlineMs);
    const out: T[] = [];
    const seen = new Set<string>();
    let next: string | undefined = query;
    for (let page = 0; next !== undefined && page < MAX_PAGES; page++) {
      const answer = await this.call('GET', path, path, { query: next, deadline });
      const doc = this.parse(answer);
      out.push(...this.resource<T[]>(answer, key, doc, filter?.fields !== undefined));
      next = nextPageQuery(doc[`${key}_links`]);
      if (next !== undefined && seen.has(next)) break;
      if (next !== undefined) seen.add(next);
    }
    return out;
  }

  private async show<T>(collection: string, key: string, id: string): Promise<T> {
    const path = `/v2.0/${collection}/${encodeSegment(id)}`;
    return this.resource<T>(await this.call('GET', `/v2.0/${collection}/{id}`, path), key);
  }

  private async create<T>(collection: string, key: string, body: unknown): Promise<T> {
    const path = `/v2.0/${collection}`;
    return this.resource<T>(await this.call('POST', path, path, { body: { [key]: body } }), key);
  }

  private async createBulk<T>(collection: string, key: string, bodies: readonly unknown[]): Promise<T[]> {
    if (bodies.length === 0) return [];
    const path = `/v2.0/${collection}`;
    return this.resource<T[]>(await this.call('POST', path, path, { body: { [key]: bodies } }), key);
  }

  private async update<T>(collection: string, key: string, id: string, body: unknown): Promise<T> {
    const path = `/v2.0/${collection}/${encodeSegment(id)}`;
    const answer = await this.call('PUT', `/v2.0/${collection}/{id}`, path, { body: { [key]: body } });
    return this.resource<T>(answer, key);
  }

  private async remove(collection: string, id: string): Promise<void> {
    await this.call('DELETE', `/v2.0/${collection}/{id}`, `/v2.0/${collection}/${encodeSegment(id)}`);
  }

  // ---- NeutronApi ----------------------------------------------------------------------------------------------

  async listExtensions(): Promise<Extension[]> {
    return this.list<Extension>('extensions', 'extensions', undefined);
  }

  listNetworks(filter?: ListFilter): Promise<Network[]> {
    return this.list('networks', 'networks', filter);
  }
  showNetwork(id: string): Promise<Network> {
    return this.show('networks', 'network', id);
  }
  createNetwork(body: NetworkCreate): Promise<Network> {
    return this.create('networks', 'network', body);
  }
  updateNetwork(id: string, body: NetworkUpdate): Promise<Network> {
    return this.update('networks', 'network', id, body);
  }
  deleteNetwork(id: string): Promise<void> {
    return this.remove('networks', id);
  }

  listSubnets(filter?: ListFilter): Promise<Subnet[]> {
    return this.list('subnets', 'subnets', filter);
  }
  showSubnet(id: string): Promise<Subnet> {
    return this.show('subnets', 'subnet', id);
  }
  createSubnets(bodies: readonly SubnetCreate[]): Promise<Subnet[]> {
    return this.createBulk('subnets', 'subnets', bodies);
  }
  updateSubnet(id: string, body: SubnetUpdate): Promise<Subnet> {
    return this.update('subnets', 'subnet', id, body);
  }
  deleteSubnet(id: string): Promise<void> {
    return this.remove('subnets', id);
  }

  async listSubnetPools(filter?: ListFilter): Promise<SubnetPool[]> {
    return (await this.list<SubnetPool>('subnetpools', 'subnetpools', filter)).map(normalizeSubnetPool);
  }
  async showSubnetPool(id: string): Promise<SubnetPool> {
    return normalizeSubnetPool(await this.show('subnetpools', 'subnetpool', id));
  }
  async createSubnetPool(body: SubnetPoolCreate): Promise<SubnetPool> {
    return normalizeSubnetPool(await this.create('subnetpools', 'subnetpool', body));
  }
  async updateSubnetPool(id: string, body: SubnetPoolUpdate): Promise<SubnetPool> {
    return normalizeSubnetPool(await this.update('subnetpools', 'subnetpool', id, body));
  }
  deleteSubnetPool(id: string): Promise<void> {
    return this.remove('subnetpools', id);
  }

  listPorts(filter?: ListFilter): Promise<Port[]> {
    return this.list('ports', 'ports', filter);
  }
  showPort(id: string): Promise<Port> {
    return this.show('ports', 'port', id);
  }
  createPort(body: PortCreate): Promise<Port> {
    return this.create('ports', 'port', body);
  }
  updatePort(id: string, body: PortUpdate): Promise<Port> {
    return this.update('ports', 'port', id, body);
  }
  deletePort(id: string): Promise<void> {
    return this.remove('ports', id);
  }

  listSecurityGroups(filter?: ListFilter): Promise<SecurityGroup[]> {
    return this.list('security-groups', 'security_groups', filter);
  }
  createSecurityGroup(body: SecurityGroupCreate): Promise<SecurityGroup> {
    return this.create('security-groups', 'security_group', body);
  }
  deleteSecurityGroup(id: string): Promise<void> {
    return this.remove('security-groups', id);
  }
  createSecurityGroupRules(bodies: readonly SecurityGroupRuleCreate[]): Promise<SecurityGroupRule[]> {
    return this.createBulk('security-group-rules', 'security_group_rules', bodies);
  }

  // ---- NestedNeutronApi (nested-api.ts) -----------------------------------------------------------------------

  async updatePortIfRevision(id: string, body: PortUpdate, revision: number): Promise<Port> {
    const path = `/v2.0/ports/${encodeSegment(id)}`;
    const headers = { 'If-Match': `revision_number=${revision}` };
    const answer = await this.call('PUT', '/v2.0/ports/{id}', path, { body: { port: body }, headers });
    return this.resource<Port>(answer, 'port');
  }
  listTrunks(filter?: ListFilter): Promise<Trunk[]> {
    return this.list('trunks', 'trunks', filter);
  }
  showTrunk(id: string): Promise<Trunk> {
    return this.show('trunks', 'trunk', id);
  }
  async addSubports(trunkId: string, subports: readonly SubPort[]): Promise<Trunk> {
    const path = `/v2.0/trunks/${encodeSegment(trunkId)}/add_subports`;
    const answer = await this.call('PUT', '/v2.0/trunks/{id}/add_subports', path, { body: { sub_ports: subports } });
    return trunkOf(this.parse(answer));
  }
  async removeSubports(trunkId: string, portIds: readonly string[]): Promise<Trunk> {
    const path = `/v2.0/trunks/${encodeSegment(trunkId)}/remove_subports`;
    const body = { sub_ports: portIds.map((port_id) => ({ port_id })) };
    const answer = await this.call('PUT', '/v2.0/trunks/{id}/remove_subports', path, { body });
    return trunkOf(this.parse(answer));
  }

  async replaceTags(resource: TaggedResource, id: string, tags: readonly string[]): Promise<string[]> {
    const path = `/v2.0/${resource}/${encodeSegment(id)}/tags`;
    const answer = await this.call('PUT', `/v2.0/${resource}/{id}/tags`, path, { body: { tags } });
    return this.pick<string[]>(answer, 'tags');
  }

  async addTag(resource: TaggedResource, id: string, tag: string): Promise<void> {
    const path = `/v2.0/${resource}/${encodeSegment(id)}/tags/${encodeSegment(tag)}`;
    await this.call('PUT', `/v2.0/${resource}/{id}/tags/{tag}`, path);
  }

  async removeTag(resource: TaggedResource, id: string, tag: string): Promise<void> {
    const path = `/v2.0/${resource}/${encodeSegment(id)}/tags/${encodeSegment(tag)}`;
    await this.call('DELETE', `/v2.0/${resource}/{id}/tags/{tag}`, path);
  }
}

/** The trunk of a subport action's answer: Neutron answers the trunk itself, not wrapped in `{"trunk": ...}`. */
function trunkOf(doc: Record<string, unknown>): Trunk {
  const wrapped = doc.trunk;
  return (typeof wrapped === 'object' && wrapped !== null ? wrapped : doc) as Trunk;
}

/** Subnet-pool attributes Neutron (Zed) answers as strings (`"min_prefixlen": "8"`) although they are integers. */
const POOL_INTEGERS = ['default_prefixlen', 'min_prefixlen', 'max_prefixlen', 'ip_version', 'default_quota'] as const;

/** A subnet pool with its integer attributes as numbers, as `SubnetPool` types them. */
export function normalizeSubnetPool(pool: SubnetPool): SubnetPool {
  const record = pool as unknown as Record<string, unknown>;
  for (const key of POOL_INTEGERS) {
    const v = record[key];
    if (typeof v === 'string' && /^-?\d+$/.test(v.trim())) record[key] = Number(v);
  }
  return pool;
}

/**
 * The query of the `next` link of a page (`<collection>_links`), or undefined on the last page. Only the query
 * is taken: the link's host and path are Neutron's view of itself, which need not be reachable from here (as the
 * python client does).
 */
export function nextPageQuery(links: unknown): string | undefined {
  if (!Array.isArray(links)) return undefined;
  for (const link of links) {
    if (typeof link !== 'object' || link === null) continue;
    const { rel, href } = link as { rel?: unknown; href?: unknown };
    if (rel !== 'next' || typeof href !== 'string') continue;
    const q = href.indexOf('?');
    return q < 0 ? undefined : href.slice(q + 1);
  }
  return undefined;
}
