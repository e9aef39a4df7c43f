/**
 * `[DEFAULT] kuryr_uri` (or `OS_KURYR_URI`): where the original serves the plugin API, e.g.
 * `kuryr_uri = http://10.0.0.5:23750` as kolla-ansible writes it. When it is set (in the file or the
 * environment, not merely defaulted), `serve` listens there as with `--listen HOST:PORT` and writes the spec file
 * Docker discovers the plugin by.
 */
import { fail } from '../errors.ts';

/** `HOST:PORT` (`[v6]:PORT`) for `--listen`, from a set `kuryr_uri`; undefined when it is not set. */
export function kuryrUriListen(
  values: Record<string, Record<string, string>>,
  env: NodeJS.ProcessEnv,
  file: string | null,
): string | undefined {
  const fromEnv = env.OS_KURYR_URI;
  const text = fromEnv !== undefined && fromEnv !== '' ? fromEnv : values.DEFAULT?.kuryr_uri;
  if (text === undefined || text.trim() === '') return undefined;
  const where = fromEnv !== undefined && fromEnv !== '' ? 'OS_KURYR_URI' : `${file ?? 'defaults'}: [DEFAULT] kuryr_uri`;
  let url: URL;
  try {
    url = new URL(text.trim());
  } catch {
    throw fail.config(`${where}: ${JSON.stringify(text)} is not a URL (e.g. http://127.0.0.1:23750)`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw fail.config(`${where}: ${JSON.stringify(text)}: the scheme must be http or https`);
  }
  if (url.port === '') throw fail.config(`${where}: ${JSON.stringify(text)} has no port (e.g. :23750)`);
  if ((url.pathname !== '/' && url.pathname !== '') || url.search !== '' || url.username !== '') {
    throw fail.config(`${where}: ${JSON.stringify(text)}: only scheme, host and port are allowed`);
  }
  return `${url.hostname}:${url.port}`; // an IPv6 hostname keeps its brackets, as --listen expects
}
