/**
 * `docker.engine`: the Docker Engine answers `GET /version` on its API socket (`--docker-host`, else
 * DOCKER_HOST, else unix:///var/run/docker.sock), and is recent enough for network plugins.
 */
import { DockerClient } from '../docker/client.ts';
import { type CheckResult, errnoOf, failed, type ManagedPlugin, messageOf, ok, warn } from './types.ts';

export const DEFAULT_DOCKER_HOST = 'unix:///var/run/docker.sock';

interface VersionDoc {
  Version?: string;
  ApiVersion?: string;
  Os?: string;
  Arch?: string;
}

/** Engine API versions before 1.25 (Docker 1.13) have no managed plugins and older network-plugin semantics. */
const MIN_API = [1, 25] as const;

export async function checkDockerEngine(
  host: string,
): Promise<{ result: CheckResult; client: DockerClient | null; managedPlugins: ManagedPlugin[] | null }> {
  let client: DockerClient;
  try {
    client = new DockerClient(host);
  } catch (err) {
    return {
      result: failed(
        'docker.engine',
        messageOf(err),
        'set DOCKER_HOST or --docker-host to unix:///path or tcp://host:port',
      ),
      client: null,
      managedPlugins: null,
    };
  }
  let version: VersionDoc;
  try {
    version = await client.get<VersionDoc>('/version', 5_000);
  } catch (err) {
    return { result: engineDown(host, err), client: null, managedPlugins: null };
  }
  const managedPlugins = await client.get<ManagedPlugin[]>('/plugins', 5_000).catch(() => null);
  const api = (version.ApiVersion ?? '0.0').split('.').map(Number);
  const summary = `Docker Engine ${version.Version ?? '?'} (API ${version.ApiVersion ?? '?'}, ${version.Os ?? '?'}/${version.Arch ?? '?'}) at ${host}`;
  const old = (api[0] ?? 0) < MIN_API[0] || ((api[0] ?? 0) === MIN_API[0] && (api[1] ?? 0) < MIN_API[1]);
  const result = old
    ? warn('docker.engine', `${summary}: older than Docker 1.13`, 'upgrade Docker (kuryr-ts is tested with 20.10)')
    : ok('docker.engine', summary);
  return { result, client, managedPlugins };
}

function engineDown(host: string, err: unknown): CheckResult {
  const code = errnoOf(err);
  if (code === 'ENOENT' || code === 'ECONNREFUSED') {
    return failed(
      'docker.engine',
      `no Docker Engine answers at ${host} (${code})`,
      'start it (systemctl start docker), or point --docker-host / DOCKER_HOST at the engine that uses this plugin',
    );
  }
  if (code === 'EACCES' || code === 'EPERM') {
    return failed(
      'docker.engine',
      `permission denied on ${host}`,
      'run kuryr doctor as root (the plugin itself runs as root too)',
    );
  }
  return failed('docker.engine', `${host}: ${messageOf(err)}`, 'check that dockerd runs and answers `docker version`');
}
