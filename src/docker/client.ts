/**
 * A minimal Docker Engine API client (node:http) for what the plugin asks Docker: its networks of one driver
 * and the endpoints on them; and the networks `kuryr network create|rm` makes and removes. Speaks to `unix:///var/run/docker.sock` by default, or `DOCKER_HOST`.
 */
import { fail } from '../errors.ts';

/**
 * node:http as CommonJS: an ESM import of it builds its namespace, whose lazy getters load undici, http2, zlib and
 * tls (about 10 MiB of RSS in the plugin).
 */
const http = process.getBuiltinModule('node:http');

export interface DockerNetworkSummary {
  Id: string;
  Name: string;
  Driver: string;
  IPAM?: { Driver?: string; Config?: { Subnet?: string; Gateway?: string }[] | null };
}

export interface DockerNetworkDetail extends DockerNetworkSummary {
  Containers?: Record<
    string,
    { Name?: string; EndpointID?: string; MacAddress?: string; IPv4Address?: string; IPv6Address?: string }
  > | null;
}

export interface DockerEndpoints {
  /** Docker network IDs using our driver. */
  networks: Map<string, DockerNetworkDetail>;
  /** Endpoint IDs of containers on those networks. */
  endpoints: Set<string>;
  /** Addresses (without prefix) Docker holds on those networks, container endpoints only. */
  addresses: Set<string>;
}

/** A Docker Engine API answer with an error status (`status`: 404 no such network, 409 conflict, ...). */
export class DockerApiError extends Error {
  readonly status: number;
  constructor(message: string, status: number) {
    super(message);
    this.name = 'DockerApiError';
    this.status = status;
  }
}

/** Docker's `{"message": "..."}` error text, else the answer as it is. */
function dockerMessage(text: string): string {
  try {
    const parsed = JSON.parse(text) as { message?: unknown };
    if (typeof parsed.message === 'string') return parsed.message;
  } catch {
    // not JSON
  }
  return text.trim();
}

export class DockerClient {
  readonly socketPath: string | undefined;
  readonly baseUrl: string;

  /** `host` as in DOCKER_HOST: `unix:///path`, `tcp://host:port`; default the local socket. */
  constructor(host: string = process.env.DOCKER_HOST ?? 'unix:///var/run/docker.sock') {
    if (host.startsWith('unix://')) {
      this.socketPath = host.slice('unix://'.length);
      this.baseUrl = 'http://docker';
    } else if (host.startsWith('tcp://') || host.startsWith('http://')) {
      this.socketPath = undefined;
      this.baseUrl = host.replace(/^tcp:/, 'http:');
    } else {
      throw fail.config(`unsupported Docker host ${JSON.stringify(host)} (use unix:///path or tcp://host:port)`);
    }
  }

  /** GET a JSON document from the Engine API. */
  get<T>(path: string, timeoutMs = 10_000): Promise<T> {
    return this.request<T>('GET', path, undefined, timeoutMs);
  }

  /** POST a JSON body; resolves to the JSON answer (undefined for an empty one). */
  post<T>(path: string, body: unknown, timeoutMs = 30_000): Promise<T> {
    return this.request<T>('POST', path, body, timeoutMs);
  }

  /** DELETE a resource (Docker answers 204 without a body). */
  async delete(path: string, timeoutMs = 30_000): Promise<void> {
    await this.request<unknown>('DELETE', path, undefined, timeoutMs);
  }

  /**
   * One Engine API call. A status of 300 or more is an error carrying Docker's `message` (the whole answer when
   * it is not Docker's JSON error) and the status (`err.status`).
   */
  private request<T>(method: 'GET' | 'POST' | 'DELETE', path: string, body: unknown, timeoutMs: number): Promise<T> {
    const url = new URL(path, this.baseUrl);
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const what = `Docker API ${method} ${path}`;
    return new Promise((resolve, reject) => {
      const req = http.request(
        {
          ...(this.socketPath === undefined ? { host: url.hostname, port: url.port } : { socketPath: this.socketPath }),
          path: `${url.pathname}${url.search}`,
          method,
          timeout: timeoutMs,
          ...(payload === undefined
            ? {}
            : { headers: { 'Content-Type': 'application/json', 'Content-Length': payload.length } }),
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            const status = res.statusCode ?? 500;
            if (status >= 300) {
              reject(new DockerApiError(`${what}: HTTP ${status}: ${dockerMessage(text)}`, status));
              return;
            }
            if (text.trim() === '') {
              resolve(undefined as T);
              return;
            }
            try {
              resolve(JSON.parse(text) as T);
            } catch (err) {
              reject(new Error(`${what}: invalid JSON: ${(err as Error).message}`));
            }
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error(`${what}: no answer within ${timeoutMs} ms`)));
      req.on('error', reject);
      req.end(payload);
    });
  }

  /** Docker's networks of one driver, with the endpoints of their containers. */
  async endpointsOf(driverName: string): Promise<DockerEndpoints> {
    const all = await this.get<DockerNetworkSummary[]>('/networks');
    const networks = new Map<string, DockerNetworkDetail>();
    const endpoints = new Set<string>();
    const addresses = new Set<string>();
    for (const summary of all) {
      if (!isDriverRef(summary.Driver, driverName) && !isDriverRef(summary.IPAM?.Driver, driverName)) continue;
      const detail = await this.get<DockerNetworkDetail>(`/networks/${encodeURIComponent(summary.Id)}`);
      networks.set(detail.Id, detail);
      for (const c of Object.values(detail.Containers ?? {})) {
        if (c.EndpointID) endpoints.add(c.EndpointID);
        for (const a of [c.IPv4Address, c.IPv6Address]) if (a) addresses.add(a.split('/')[0]!);
      }
    }
    return { networks, endpoints, addresses };
  }
}

/**
 * True when Docker's driver field names our driver: its name, or a managed plugin's reference `NAME:TAG` (Docker
 * 20.10 names a managed driver by its full reference, `-d NAME:latest`).
 */
export function isDriverRef(field: string | undefined, driverName: string): boolean {
  return field === driverName || (field?.startsWith(`${driverName}:`) ?? false);
}

/** Names of Docker networks, asked of the engine (for readable Neutron descriptions). */
export function dockerNames(client: DockerClient) {
  return {
    async networkName(dockerNetworkId: string): Promise<string | undefined> {
      try {
        const network = await client.get<{ Name?: string }>(`/networks/${encodeURIComponent(dockerNetworkId)}`, 3_000);
        return network.Name || undefined;
      } catch {
        return undefined;
      }
    },
  };
}
