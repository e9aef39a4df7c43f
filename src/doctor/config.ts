/**
 * `config`: the configuration loads. The loader already names the file, section and key of a bad option (or
 * the environment variable, or the flag); the check repeats that message and points at the reference.
 */
import type { Config } from '../config/config.ts';
import { type CommonFlags, loadConfig } from '../config/load.ts';
import { type CheckResult, failed, messageOf, ok } from './types.ts';

export function checkConfig(
  flags: CommonFlags,
  env: NodeJS.ProcessEnv,
): { result: CheckResult; config: Config | null } {
  try {
    const config = loadConfig(flags, env);
    const source = config.configFile === null ? 'no kuryr.conf (defaults and environment)' : config.configFile;
    return {
      result: ok('config', `${source}: backend ${config.backend}, driver ${config.driverName}`),
      config,
    };
  } catch (err) {
    return {
      result: failed(
        'config',
        messageOf(err),
        'fix the option named above (every option, its default and variable: docs/configuration.md)',
      ),
      config: null,
    };
  }
}
