/**
 * HTTP(S) proxies from the environment, chosen as python-requests (and so keystoneauth and neutronclient, the
 * original's clients) chooses them:
 *
 * - `http_proxy` / `https_proxy` / `all_proxy` by the target's scheme (`all_proxy` when the scheme has none),
 *   any case, the lower-case variable winning (urllib's `getproxies_environment`);
 * - `no_proxy` / `NO_PROXY` (lower case first), a comma-separated list: for an IPv4 target an entry is a CIDR
 *   (`10.0.0.0/8`) or the exact address; for a host name an entry matches when the name (or `name:port`) ends
 *   with it (requests' `should_bypass_proxies`); and, as urllib's `proxy_bypass_environment`, `*` matches every
 *   host and `.example.com` / `example.com` match the domain and its subdomains.
 * - Loopback is **not** bypassed by itself: requests proxies `127.0.0.1` unless `no_proxy` names it.
 * - A proxy URL without a scheme is `http://`; credentials in it are sent as `Proxy-Authorization: Basic`.
 *   Only `http://` proxies are supported (a plain-HTTP request to the proxy, or CONNECT for an https target).
 */
import { fail } from '../../errors.ts';
import { cidrContainsIp, isCidr, isIp, parseCidr } from '../../util/ip.ts';

/** The proxy variables that apply, by scheme (`http`, `https`, `all`) and `no`. */
export type ProxyEnv = Partial<Record<'http' | 'https' | 'all' | 'no', string>>;

const KEYS = ['http', 'https', 'all', 'no'] as const;

/** Proxy settings from environment variables, the lower-case ones winning (an empty lower-case one unsets). */
export function proxiesFromEnv(env: NodeJS.ProcessEnv): ProxyEnv {
  const out: ProxyEnv = {};
  for (const key of KEYS) {
    const upper = env[`${key.toUpperCase()}_PROXY`];
    const lower = env[`${key}_proxy`];
    const value = lower !== undefined ? lower : upper;
    if (value !== undefined && value.trim() !== '') out[key] = value.trim();
  }
  return out;
}

const isIpv4 = (host: string) => isIp(host) && !host.includes(':');

/** True when `no_proxy` exempts the URL's host from proxying. */
export function bypassesProxy(url: URL, noProxy: string | undefined): boolean {
  if (noProxy === undefined) return false;
  const entries = noProxy
    .replace(/ /g, '')
    .split(',')
    .filter((e) => e !== '');
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  const hostWithPort = url.port === '' ? host : `${host}:${url.port}`;
  // requests' own check.
  if (isIpv4(host)) {
    for (const entry of entries) {
      if (isCidr(entry) && !entry.includes(':') && Number(entry.split('/')[1]) >= 1) {
        if (cidrContainsIp(parseCidr(entry), host)) return true;
      } else if (entry === host) return true;
    }
  } else if (entries.some((e) => host.endsWith(e.toLowerCase()) || hostWithPort.endsWith(e.toLowerCase()))) {
    return true;
  }
  // urllib's proxy_bypass_environment, which requests consults next.
  if (noProxy.trim() === '*') return true;
  for (const raw of noProxy.split(',')) {
    const name = raw.trim().replace(/^\.+/, '').toLowerCase();
    if (name === '') continue;
    if (host === name || hostWithPort === name) return true;
    if (host.endsWith(`.${name}`) || hostWithPort.endsWith(`.${name}`)) return true;
  }
  return false;
}

/** The proxy to send a request for `url` through, if any. */
export function proxyFor(url: URL, proxies: ProxyEnv): URL | undefined {
  const scheme = url.protocol.replace(/:$/, '') as 'http' | 'https';
  const configured = proxies[scheme] ?? proxies.all;
  if (configured === undefined || bypassesProxy(url, proxies.no)) return undefined;
  const variable = proxies[scheme] !== undefined ? `${scheme}_proxy` : 'all_proxy';
  let proxy: URL;
  try {
    proxy = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(configured) ? configured : `http://${configured}`);
  } catch {
    throw fail.config(`${variable} (or ${variable.toUpperCase()}): not a URL: ${JSON.stringify(configured)}`);
  }
  if (proxy.protocol !== 'http:') {
    throw fail.config(
      `${variable} (or ${variable.toUpperCase()}): only http:// proxies are supported, got ${proxy.protocol}// (set no_proxy to reach ${url.hostname} directly)`,
    );
  }
  return proxy;
}

/** `Proxy-Authorization` for a proxy URL with credentials. */
export function proxyAuthorization(proxy: URL): Record<string, string> {
  if (proxy.username === '' && proxy.password === '') return {};
  const credentials = `${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`;
  return { 'Proxy-Authorization': `Basic ${Buffer.from(credentials).toString('base64')}` };
}

/** The proxy for messages: scheme, host and port, never its credentials. */
export function describeProxy(proxy: URL): string {
  return `${proxy.protocol}//${proxy.host}`;
}
