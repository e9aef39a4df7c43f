/**
 * The CNM ⇄ Neutron driver: one method per libnetwork remote-driver and IPAM call. Knows nothing of HTTP.
 */
import { type CreateEndpointInput, createEndpoint, deleteEndpoint, endpointOperInfo } from './endpoint.ts';
import { programExternalConnectivity, revokeExternalConnectivity } from './connectivity.ts';
import { createRuntime, type DriverDeps, type DriverRuntime, forRequest, lookingAgain } from './context.ts';
import {
  type ReleaseAddressInput,
  type RequestAddressInput,
  releaseAddress,
  requestAddress,
} from './ipam-addresses.ts';
import { type RequestPoolInput, releasePool, requestPool } from './ipam-pools.ts';
import { join } from './join.ts';
import type { RequestBudget } from '../util/deadline.ts';
import { type CreateNetworkInput, createNetwork, deleteNetwork } from './network.ts';
import { freeSwarmNetwork } from './swarm.ts';

export class KuryrDriver {
  readonly runtime: DriverRuntime;

  constructor(deps: DriverDeps | { runtime: DriverRuntime }) {
    this.runtime = 'runtime' in deps ? deps.runtime : createRuntime(deps);
  }

  /** This driver for one request: its Neutron calls end by the request's `deadline` (plugin/server.ts). */
  forRequest(deadline: RequestBudget): KuryrDriver {
    return new KuryrDriver({ runtime: forRequest(this.runtime, deadline) });
  }

  // ---- handshake ----

  networkCapabilities() {
    const scope = this.runtime.settings.capabilityScope;
    return { Scope: scope, ConnectivityScope: scope };
  }

  ipamCapabilities() {
    // Docker's MAC in RequestAddress lets the IPv6 request find the port of the IPv4 one (one port per endpoint).
    return { RequiresMACAddress: true, RequiresRequestReplay: false };
  }

  defaultAddressSpaces() {
    return {
      LocalDefaultAddressSpace: this.runtime.settings.localDefaultAddressSpace,
      GlobalDefaultAddressSpace: this.runtime.settings.globalDefaultAddressSpace,
    };
  }

  // ---- IPAM ----

  requestPool(req: RequestPoolInput) {
    return lookingAgain(this.runtime, (rt) => requestPool(rt, req));
  }

  async releasePool(poolId: string): Promise<Record<string, never>> {
    await lookingAgain(this.runtime, (rt) => releasePool(rt, poolId));
    return {};
  }

  requestAddress(req: RequestAddressInput) {
    return lookingAgain(this.runtime, (rt) => requestAddress(rt, req));
  }

  async releaseAddress(req: ReleaseAddressInput): Promise<Record<string, never>> {
    await lookingAgain(this.runtime, (rt) => releaseAddress(rt, req));
    return {};
  }

  // ---- networks ----

  async createNetwork(req: CreateNetworkInput): Promise<Record<string, never>> {
    await lookingAgain(this.runtime, (rt) => createNetwork(rt, req));
    return {};
  }

  async deleteNetwork(networkId: string): Promise<Record<string, never>> {
    await lookingAgain(this.runtime, (rt) => deleteNetwork(rt, networkId));
    return {};
  }

  /** Swarm managers: the options are handed to every node's CreateNetwork unchanged. */
  allocateNetwork(options: Readonly<Record<string, string>> | null | undefined) {
    return { Options: options ?? {} };
  }

  /** Swarm managers, once the network is removed from the swarm (swarm.ts). */
  async freeNetwork(networkId: string): Promise<Record<string, never>> {
    await freeSwarmNetwork(this.runtime, networkId);
    return {};
  }

  // ---- endpoints ----

  createEndpoint(req: CreateEndpointInput) {
    return lookingAgain(this.runtime, (rt) => createEndpoint(rt, req));
  }

  async deleteEndpoint(endpointId: string): Promise<Record<string, never>> {
    await lookingAgain(this.runtime, (rt) => deleteEndpoint(rt, endpointId));
    return {};
  }

  endpointOperInfo(endpointId: string) {
    return lookingAgain(this.runtime, (rt) => endpointOperInfo(rt, endpointId));
  }

  join(endpointId: string) {
    return lookingAgain(this.runtime, (rt) => join(rt, endpointId));
  }

  async programExternalConnectivity(
    endpointId: string,
    options: Readonly<Record<string, unknown>> | null | undefined,
  ): Promise<Record<string, never>> {
    await lookingAgain(this.runtime, (rt) => programExternalConnectivity(rt, endpointId, options));
    return {};
  }

  async revokeExternalConnectivity(endpointId: string): Promise<Record<string, never>> {
    await lookingAgain(this.runtime, (rt) => revokeExternalConnectivity(rt, endpointId));
    return {};
  }
}
