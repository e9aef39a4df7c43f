import { KuryrError } from '../errors.ts';
import type { NeutronApi } from '../neutron/api.ts';
import { NeutronError } from '../neutron/errors.ts';
import { type CheckResult, errnoOf, failed, messageOf, ok, skip, warn } from './types.ts';

export const NEUTRON_CHECK_IDS = ['neutron.reachable', 'neutron.auth', 'neutron.extensions'] as const;

/** All three checks skipped for one reason. */
export function skipNeutron(reason: string, hint: string | null = null): CheckResult[] {
  return NEUTRON_CHECK_IDS.map((id) => skip(id, reason, hint));
}

/** True when the error is Keystone or Neutron refusing the credentials (401/403). */
export function isAuthFailure(err: unknown): boolean {
  if (err instanceof NeutronError) return err.status === 401 || err.status === 403;
  return (
    err instanceof KuryrError && /\b(401|403)\b|authentication failed|unauthori[sz]ed|forbidden/i.test(err.message)
  );
}

const CREDENTIALS_HINT =
  'check [neutron] auth_url, username/user_id, password, project and domain options (or SERVICE_* variables) against `openstack token issue`';

export async function checkNeutron(
  neutron: Pick<NeutronApi, 'listExtensions'>,
  timeoutMs = 30_000,
): Promise<CheckResult[]> {
  let aliases: Set<string>;
  try {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs / 1000} s`)), timeoutMs);
    });
    try {
      aliases = new Set((await Promise.race([neutron.listExtensions(), timeout])).map((e) => e.alias));
    } finally {
      clearTimeout(timer);
    }
  } catch (err) {
    if (isAuthFailure(err)) {
      return [
        ok('neutron.reachable', 'Keystone/Neutron answer'),
        failed('neutron.auth', `credentials refused: ${messageOf(err)}`, CREDENTIALS_HINT),
        skip('neutron.extensions', 'not checked: no token'),
      ];
    }
    const code = errnoOf(err);
    return [
      failed(
        'neutron.reachable',
        messageOf(err),
        code === 'ENOTFOUND'
          ? 'the host name in [neutron] auth_url (or the catalog endpoint) does not resolve'
          : 'check [neutron] auth_url / endpoint, that Keystone and neutron-server run, and the firewall',
      ),
      skip('neutron.auth', 'not checked: no answer'),
      skip('neutron.extensions', 'not checked: no answer'),
    ];
  }
  return [
    ok('neutron.reachable', 'Keystone and Neutron answer'),
    ok('neutron.auth', 'credentials accepted'),
    extensionsVerdict(aliases),
  ];
}

/** `neutron.extensions` from the loaded aliases. */
export function extensionsVerdict(aliases: ReadonlySet<string>): CheckResult {
  const missingRequired = ['subnet_allocation', 'binding'].filter((a) => !aliases.has(a));
  if (missingRequired.length > 0) {
    return failed(
      'neutron.extensions',
      `Neutron lacks ${missingRequired.join(' and ')} (kuryr needs subnet pools and port binding)`,
      'enable the ML2 plugin with subnet pools (default in Neutron) and a mechanism driver that binds ports',
    );
  }
  const tags = aliases.has('standard-attr-tag')
    ? 'standard-attr-tag'
    : aliases.has('tag') && aliases.has('tag-ext')
      ? 'tag + tag-ext'
      : null;
  const notes: string[] = [];
  if (tags === null) notes.push('no tag extension: kuryr falls back to finding resources by name');
  if (!aliases.has('security-group')) notes.push('no security-group: --expose fails');
  if (notes.length > 0) {
    return warn('neutron.extensions', notes.join('; '), 'enable the missing extensions in Neutron (docs/migration.md)');
  }
  return ok('neutron.extensions', `subnet_allocation, binding, security-group, ${tags}`);
}
