/** The Neutron HTTP backend: `NeutronApi` over a real Neutron, with Keystone authentication. */
export { buildQuery, NeutronHttpClient, type NeutronHttpClientDeps } from './client.ts';
export {
  type AdminTokenAuthOptions,
  type AuthOptions,
  DEFAULTS,
  type EndpointInterface,
  type KeystoneVersion,
  type NeutronClientOptions,
  type NoAuthOptions,
  neutronClientOptions,
  type PasswordAuthOptions,
  type RetryOptions,
  type SectionLookup,
  type TlsOptions,
  withDefaults,
} from './config.ts';
export { neutronErrorFromResponse } from './errors.ts';
export {
  type DetectOptions,
  detectNeutronFeatures,
  featuresFromAliases,
  type NeutronFeatures,
  REQUIRED_EXTENSION,
  type TagMode,
} from './extensions.ts';
export { type AuthProvider, type Credentials, createAuthProvider, RENEW_BEFORE_EXPIRY_MS } from './keystone.ts';
export { HttpTransport, type TransportOptions } from './transport.ts';

import type { SectionLookup } from './config.ts';
import { neutronClientOptions } from './config.ts';
import { NeutronHttpClient, type NeutronHttpClientDeps } from './client.ts';

/** A client from a `[neutron]` configuration section (see config.ts for the options read). */
export function openNeutronHttp(
  section: Readonly<Record<string, string>>,
  deps: NeutronHttpClientDeps & { lookupSection?: SectionLookup } = {},
): NeutronHttpClient {
  const { lookupSection, ...rest } = deps;
  return new NeutronHttpClient(neutronClientOptions(section, lookupSection), rest);
}
