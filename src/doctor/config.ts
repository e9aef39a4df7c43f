/**
 * `config`: the configuration loads. The loader already names the file, section and key of a bad option (or
 * the environment variable, or the flag); the check repeats that message and points at the reference.
 */
import type { Config } from '../config/config.ts';
import { type CommonFlags, loadConfig } from '../config/load.ts';
import { type CheckResult, failed, messageOf, ok, warn } from './types.ts';

export function checkConfig(
  flags: CommonFlags,
  env: NodeJS.ProcessEnv,
): { result: CheckResult; config: Config | null } {
  try {
    const config = loadConfig(flags, env);
    const source =
      config.configFiles.length === 0 ? 'no kuryr.conf (defaults and environment)' : config.configFiles.join(', ');
    const summary = `${source}: backend ${config.backend}, driver ${config.driverName}`;
    // Unknown options and sections, a world-readable file with a password: they do not stop serve.
    const result =
      config.warnings.length === 0
        ? ok('config', summary)
        : warn('config', `${summary}; ${config.warnings.join('; ')}`, 'see docs/configuration.md');
    return { result, config };
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
