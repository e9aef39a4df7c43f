/**
 * Harness of the fuzz suite: the plugin's HTTP server on a temporary unix socket over the in-memory embedded
 * store (test/helpers/fakes.ts), a raw HTTP client that sends exactly the bytes it is given, snapshots of
 * everything a request could change (store, reservations, fake host binding), a recorder that checks every
 * argument that reaches the host side, and the run sizing (`KURYR_FUZZ_SCALE`).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type fc from 'fast-check';
import type { HostNetworkSpec } from '../../src/binding/binder.ts';
import type { BindRequest } from '../../src/driver/port-drivers/binder.ts';
import { validateMtu } from '../../src/binding/ip-command.ts';
import { bridgeName, interfaceNames } from '../../src/binding/names.ts';
import { ERROR_CODES } from '../../src/errors.ts';
import type { NeutronApi } from '../../src/neutron/api.ts';
import { silentLogger } from '../../src/observability/logger.ts';
import type { RequestSummary } from '../../src/observability/request-context.ts';
import { listenUnix } from '../../src/plugin/listen.ts';
import { createPluginServer } from '../../src/plugin/server.ts';
import { isIp, isMac } from '../../src/util/ip.ts';
import { dockerId, mac, makeDriver } from '../helpers/fakes.ts';
import type { World } from './arbitraries.ts';

// ---- run sizing ----

/**
 * Run sizing. At scale 1 (CI) the suite generates about `CI_CASES` cases in well under 30 s.
 * - `KURYR_FUZZ_SCALE=N` multiplies every property's number of runs (`npm run stress:fuzz` uses 20);
 * - `KURYR_FUZZ_RUNS=N` (used by `npm run stress`) asks for about N generated cases in the whole suite;
 * - `KURYR_FUZZ_SEED=S` replays one seed.
 * Every test prints how many cases it generated (`t.diagnostic`).
 */
export const CI_CASES = 1_850;
export const FUZZ_SCALE = parseScale(process.env.KURYR_FUZZ_SCALE, process.env.KURYR_FUZZ_RUNS);

function parseScale(scale: string | undefined, total: string | undefined): number {
  const positive = (name: string, text: string) => {
    const n = Number(text);
    if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number, got ${text}`);
    return n;
  };
  if (scale !== undefined && scale !== '') return positive('KURYR_FUZZ_SCALE', scale);
  if (total !== undefined && total !== '') return positive('KURYR_FUZZ_RUNS', total) / CI_CASES;
  return 1;
}

/** Number of runs for a property sized `base` in CI. */
export function runs(base: number): number {
  return Math.max(1, Math.round(base * FUZZ_SCALE));
}

/** fast-check parameters: `runs(base)` runs, the seed from `KURYR_FUZZ_SEED` when given. */
export function fcParams<T>(base: number): fc.Parameters<T> {
  const seed = process.env.KURYR_FUZZ_SEED;
  // No shrinking: a case that slipped through has changed the state, so later (shrunk) runs would mislead.
  return { numRuns: runs(base), endOnFailure: true, ...(seed ? { seed: Number(seed) } : {}) };
}

// ---- raw HTTP ----

export interface Reply {
  status: number;
  raw: string;
  /** Parsed body, or undefined when it is not JSON. */
  json: unknown;
}

export interface RawRequest {
  path: string;
  method?: string;
  body?: string | Buffer;
}

/** Default limit for one request: a reply slower than this is a hang. */
export const REQUEST_TIMEOUT_MS = 10_000;

/** Sends one request over the unix socket with exactly these body bytes (Content-Length set, no Content-Type). */
export function send(socketPath: string, agent: http.Agent | false, req: RawRequest): Promise<Reply> {
  const body = req.body === undefined ? Buffer.alloc(0) : Buffer.from(req.body);
  return new Promise((resolve, reject) => {
    const r = http.request(
      {
        socketPath,
        path: req.path,
        method: req.method ?? 'POST',
        agent,
        headers: { Accept: 'application/vnd.docker.plugins.v1.2+json', 'Content-Length': body.length },
        timeout: REQUEST_TIMEOUT_MS,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const raw = Buffer.concat(chunks).toString('utf8');
          let json: unknown;
          try {
            json = JSON.parse(raw);
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, raw, json });
        });
      },
    );
    r.on('timeout', () => r.destroy(new Error(`no reply within ${REQUEST_TIMEOUT_MS} ms to ${req.path} (hang)`)));
    r.on('error', reject);
    r.end(body);
  });
}

/** Writes raw bytes on a fresh connection; resolves with whatever came back before the server closed or `waitMs`. */
export function rawExchange(
  socketPath: string,
  bytes: Buffer | string,
  opts: { waitMs?: number; endAfterWrite?: boolean; destroyAfterWrite?: boolean } = {},
): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const sock = net.connect(socketPath);
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      resolve(Buffer.concat(chunks).toString('latin1'));
    };
    const timer = setTimeout(finish, opts.waitMs ?? 2_000);
    sock.on('data', (c: Buffer) => chunks.push(c));
    sock.on('close', finish);
    sock.on('error', (err: NodeJS.ErrnoException) => {
      // The server may reset a connection that sent garbage; that is an answer too.
      if (err.code === 'ECONNRESET' || err.code === 'EPIPE') finish();
      else if (!done) {
        done = true;
        clearTimeout(timer);
        reject(err);
      }
    });
    sock.on('connect', () => {
      sock.write(bytes);
      if (opts.destroyAfterWrite) finish();
      else if (opts.endAfterWrite) sock.end();
    });
  });
}

/** The status of the first HTTP response in raw bytes, or undefined when there is none. */
export function rawStatus(raw: string): number | undefined {
  const m = /^HTTP\/1\.[01] (\d{3}) /.exec(raw);
  return m ? Number(m[1]) : undefined;
}

// ---- reply checks ----

const ERR_TEXT = /^(KURYR_ERR_[A-Z_]+): \S/s;

/** True for a plain JSON object (not an array, not null). */
export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Asserts the reply is libnetwork's error form with a known code: `{"Err": "KURYR_ERR_…: message"}` and nothing
 * else. `statuses` restricts the HTTP status (default: any 4xx). Returns the code.
 */
export function assertErr(reply: Reply, what: string, statuses?: readonly number[]): string {
  const where = `${what} → HTTP ${reply.status} ${reply.raw.slice(0, 300)}`;
  if (statuses === undefined) assert.ok(reply.status >= 400 && reply.status < 500, `expected a 4xx: ${where}`);
  else assert.ok(statuses.includes(reply.status), `expected HTTP ${statuses.join('/')}: ${where}`);
  assert.ok(isObject(reply.json), `the body is not a JSON object: ${where}`);
  assert.deepEqual(Object.keys(reply.json), ['Err'], `the body must be {"Err"} only: ${where}`);
  const err = reply.json.Err;
  assert.equal(typeof err, 'string', where);
  const m = ERR_TEXT.exec(err as string);
  assert.ok(m, `Err must read "KURYR_ERR_…: message": ${where}`);
  const code = m[1]!;
  assert.ok(Object.hasOwn(ERROR_CODES, code), `unknown error code ${code}: ${where}`);
  return code;
}

// ---- host-side recorder ----

/** Every call that reached the (fake) host side, and every argument that would not be safe for `ip`. */
export interface HostLog {
  calls: string[];
  violations: string[];
}

function checkBind(req: BindRequest, violations: string[]): void {
  try {
    interfaceNames(req.port.id);
    validateMtu(req.mtu);
    bridgeName(req.port.network_id);
  } catch (err) {
    violations.push(`bind: ${(err as Error).message}`);
  }
  if (!isMac(req.port.mac_address)) violations.push(`bind: MAC ${JSON.stringify(req.port.mac_address)}`);
}

function checkNetwork(spec: HostNetworkSpec, violations: string[]): void {
  try {
    bridgeName(spec.networkId);
    validateMtu(spec.mtu);
  } catch (err) {
    violations.push(`ensureNetwork: ${(err as Error).message}`);
  }
  for (const g of spec.gateways) {
    if (!isIp(g.address) || !Number.isInteger(g.prefixLength) || g.prefixLength < 0 || g.prefixLength > 128) {
      violations.push(`ensureNetwork: gateway ${JSON.stringify(g)}`);
    }
  }
}

type Env = Awaited<ReturnType<typeof makeDriver>>;

/** Wraps the fake binder and agent so that every call is logged and every argument checked as `ip` would need. */
function recordHost(env: Env): HostLog {
  const log: HostLog = { calls: [], violations: [] };
  const { binder, agent } = env;
  const bind = binder.bind.bind(binder);
  const unbind = binder.unbind.bind(binder);
  const ensure = agent.ensureNetwork.bind(agent);
  const remove = agent.removeNetwork.bind(agent);
  binder.bind = (req) => {
    log.calls.push(`bind ${req.port.id}`);
    checkBind(req, log.violations);
    return bind(req);
  };
  binder.unbind = (port) => {
    log.calls.push(`unbind ${port.id}`);
    try {
      interfaceNames(port.id);
    } catch (err) {
      log.violations.push(`unbind: ${(err as Error).message}`);
    }
    return unbind(port);
  };
  agent.ensureNetwork = (spec) => {
    log.calls.push(`ensureNetwork ${spec.networkId}`);
    checkNetwork(spec, log.violations);
    return ensure(spec);
  };
  agent.removeNetwork = (networkId) => {
    log.calls.push(`removeNetwork ${networkId}`);
    try {
      bridgeName(networkId);
    } catch (err) {
      log.violations.push(`removeNetwork: ${(err as Error).message}`);
    }
    return remove(networkId);
  };
  return log;
}

// ---- snapshots ----

const byId = <T extends { id: string }>(items: readonly T[]) => [...items].sort((a, b) => a.id.localeCompare(b.id));

/** Everything in the store, through the NeutronApi list calls (revision numbers included: any write shows). */
export async function storeSnapshot(neutron: NeutronApi) {
  const [networks, subnets, subnetpools, ports, securityGroups] = await Promise.all([
    neutron.listNetworks(),
    neutron.listSubnets(),
    neutron.listSubnetPools(),
    neutron.listPorts(),
    neutron.listSecurityGroups(),
  ]);
  return {
    networks: byId(networks),
    subnets: byId(subnets),
    subnetpools: byId(subnetpools),
    ports: byId(ports),
    securityGroups: byId(securityGroups),
  };
}

export type StoreSnapshot = Awaited<ReturnType<typeof storeSnapshot>>;

// ---- the in-process server ----

export interface FuzzServer {
  env: Env;
  host: HostLog;
  socketPath: string;
  /** Replies handled so far (the server's onRequest hook: every handler that finished). */
  handled: RequestSummary[];
  send(req: RawRequest): Promise<Reply>;
  /** POSTs a JSON body (or raw text) to /<method>. */
  call(method: string, body?: unknown): Promise<Reply>;
  /** Store + in-memory reservations + fake host state. */
  snapshot(): Promise<unknown>;
  /** Asserts the server still answers Plugin.Activate. */
  assertAlive(): Promise<void>;
  close(): Promise<void>;
}

/** The plugin server (default 1 MiB body limit) over a fresh in-memory store, on a temporary unix socket. */
export async function startFuzzServer(): Promise<FuzzServer> {
  const env = await makeDriver();
  const host = recordHost(env);
  const handled: RequestSummary[] = [];
  const server = createPluginServer({
    driver: env.driver,
    log: silentLogger(),
    onRequest: (summary) => handled.push(summary),
  });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kuryr-fuzz-'));
  const socketPath = path.join(dir, 'plugin.sock');
  await listenUnix(server, socketPath, null);
  // Keep-alive, as dockerd: a request that upsets the server must not break the connection for the next one.
  const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  const sendOne = (req: RawRequest) => send(socketPath, agent, req);
  const self: FuzzServer = {
    env,
    host,
    socketPath,
    handled,
    send: sendOne,
    call: (method, body) =>
      sendOne({
        path: `/${method}`,
        ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
      }),
    snapshot: async () => {
      const store = await storeSnapshot(env.neutron);
      const reservations = store.subnetpools.map((p) => [p.id, env.driver.runtime.reservations.reserved(p.id)]);
      return {
        store,
        reservations,
        bound: [...env.binder.bound.keys()].sort(),
        // The agent holds a set of gateway addresses: their order is not state.
        bridges: [...env.agent.networks.values()]
          .map((spec) => ({ ...spec, gateways: [...spec.gateways].sort((a, b) => a.address.localeCompare(b.address)) }))
          .sort((a, b) => a.networkId.localeCompare(b.networkId)),
      };
    },
    assertAlive: async () => {
      const r = await sendOne({ path: '/Plugin.Activate' });
      assert.equal(r.status, 200, `Plugin.Activate after the batch: ${r.raw}`);
      assert.deepEqual(r.json, { Implements: ['NetworkDriver', 'IpamDriver'] });
    },
    close: async () => {
      agent.destroy();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
      env.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  return self;
}

/** A reply that must be 200 with a JSON object (setting up the world). */
export async function ok(server: FuzzServer, method: string, body?: unknown): Promise<Record<string, unknown>> {
  const r = await server.call(method, body);
  assert.equal(r.status, 200, `${method} ${JSON.stringify(body)} → ${r.raw}`);
  assert.ok(isObject(r.json), r.raw);
  return r.json;
}

// ---- the world the fuzzed requests aim at ----

/** Sandbox options Docker sends with Join / ProgramExternalConnectivity. */
const EXPOSED = 'com.docker.network.endpoint.exposedports';
const MAC = 'com.docker.network.endpoint.macaddress';
const GATEWAY = { RequestAddressType: 'com.docker.network.gateway' };

/**
 * Creates, through the API as dockerd would: network A (own pool 10.60.0.0/24) with a joined endpoint whose
 * exposed ports have a security group, and a spare unbound port; dual-stack network B from the default pools
 * with one endpoint; pool C requested but unused; a user pool for `neutron.pool.name`.
 */
export async function populateWorld(s: FuzzServer): Promise<World> {
  await s.env.neutron.createSubnetPool({ name: 'fuzz-user-pool', prefixes: ['10.99.0.0/16'], default_prefixlen: 24 });
  const netA = dockerId();
  const epA = dockerId();
  const poolA = String(
    (
      await ok(s, 'IpamDriver.RequestPool', {
        AddressSpace: 'x',
        Pool: '10.60.0.0/24',
        SubPool: '',
        Options: {},
        V6: false,
      })
    ).PoolID,
  );
  await ok(s, 'IpamDriver.RequestAddress', { PoolID: poolA, Address: '', Options: GATEWAY });
  await ok(s, 'NetworkDriver.CreateNetwork', {
    NetworkID: netA,
    Options: { 'com.docker.network.enable_ipv6': false, 'com.docker.network.generic': {} },
    IPv4Data: [{ AddressSpace: 'x', Pool: '10.60.0.0/24', Gateway: '10.60.0.1/24' }],
    IPv6Data: [],
  });
  const addrA = String(
    (await ok(s, 'IpamDriver.RequestAddress', { PoolID: poolA, Address: '', Options: { [MAC]: mac(1) } })).Address,
  );
  await ok(s, 'NetworkDriver.CreateEndpoint', {
    NetworkID: netA,
    EndpointID: epA,
    Interface: { Address: addrA, AddressIPv6: '', MacAddress: mac(1) },
    Options: {},
  });
  const sandbox = { [EXPOSED]: [{ Proto: 6, Port: 80 }] };
  await ok(s, 'NetworkDriver.Join', {
    NetworkID: netA,
    EndpointID: epA,
    SandboxKey: '/var/run/docker/netns/0123456789ab',
    Options: sandbox,
  });
  await ok(s, 'NetworkDriver.ProgramExternalConnectivity', { NetworkID: netA, EndpointID: epA, Options: sandbox });
  const spare = String(
    (await ok(s, 'IpamDriver.RequestAddress', { PoolID: poolA, Address: '', Options: { [MAC]: mac(2) } })).Address,
  );

  const netB = dockerId();
  const epB = dockerId();
  const b4 = await ok(s, 'IpamDriver.RequestPool', {
    AddressSpace: 'x',
    Pool: '',
    SubPool: '',
    Options: {},
    V6: false,
  });
  const b6 = await ok(s, 'IpamDriver.RequestPool', { AddressSpace: 'x', Pool: '', SubPool: '', Options: {}, V6: true });
  const gw4 = await ok(s, 'IpamDriver.RequestAddress', { PoolID: b4.PoolID, Address: '', Options: GATEWAY });
  const gw6 = await ok(s, 'IpamDriver.RequestAddress', { PoolID: b6.PoolID, Address: '', Options: GATEWAY });
  await ok(s, 'NetworkDriver.CreateNetwork', {
    NetworkID: netB,
    Options: { 'com.docker.network.enable_ipv6': true, 'com.docker.network.generic': {} },
    IPv4Data: [{ AddressSpace: 'x', Pool: b4.Pool, Gateway: gw4.Address }],
    IPv6Data: [{ AddressSpace: 'x', Pool: b6.Pool, Gateway: gw6.Address }],
  });
  const a4 = await ok(s, 'IpamDriver.RequestAddress', { PoolID: b4.PoolID, Address: '', Options: { [MAC]: mac(3) } });
  const a6 = await ok(s, 'IpamDriver.RequestAddress', { PoolID: b6.PoolID, Address: '', Options: { [MAC]: mac(3) } });
  await ok(s, 'NetworkDriver.CreateEndpoint', {
    NetworkID: netB,
    EndpointID: epB,
    Interface: { Address: a4.Address, AddressIPv6: a6.Address, MacAddress: mac(3) },
    Options: {},
  });
  const poolC = String(
    (
      await ok(s, 'IpamDriver.RequestPool', {
        AddressSpace: 'x',
        Pool: '10.80.0.0/24',
        SubPool: '',
        Options: {},
        V6: false,
      })
    ).PoolID,
  );

  const pools = await s.env.neutron.listSubnetPools();
  assert.equal((await s.env.neutron.listNetworks()).length, 2);
  assert.equal(
    (
      await s.env.neutron.listSecurityGroups({
        name: `${(await s.env.neutron.listPorts({ mac_address: mac(1) }))[0]!.id}-exposed_ports`,
      })
    ).length,
    1,
  );
  return {
    netA,
    poolA,
    poolAUuid: poolA.split('@')[0]!,
    cidrA: '10.60.0.0/24',
    gatewayA: '10.60.0.1',
    epA,
    addrA: addrA.split('/')[0]!,
    spareAddr: spare.split('/')[0]!,
    netB,
    epB,
    poolC,
    poolNames: pools.map((p) => p.name),
  };
}
