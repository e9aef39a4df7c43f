export type CheckStatus = 'ok' | 'warn' | 'fail' | 'skip';

export interface CheckResult {
  /** Stable identifier (`docker.engine`, `plugin.socket`, ...), listed in docs/troubleshooting.md. */
  id: string;
  status: CheckStatus;
  /** One line: what was found. */
  summary: string;
  /** One line: what to do about it; null when there is nothing to do. */
  hint: string | null;
}

export const ok = (id: string, summary: string, hint: string | null = null): CheckResult => ({
  id,
  status: 'ok',
  summary,
  hint,
});
export const warn = (id: string, summary: string, hint: string | null): CheckResult => ({
  id,
  status: 'warn',
  summary,
  hint,
});
export const failed = (id: string, summary: string, hint: string | null): CheckResult => ({
  id,
  status: 'fail',
  summary,
  hint,
});
export const skip = (id: string, summary: string, hint: string | null = null): CheckResult => ({
  id,
  status: 'skip',
  summary,
  hint,
});

/** Where the checks look; defaults are the real system's paths, tests point them elsewhere. */
export interface DoctorPaths {
  /** Docker's legacy plugin socket directory (also the parent of managed plugins' runtime directories). */
  socketDir: string;
  /** Docker's legacy spec-file directories, in Docker's order. */
  specDirs: readonly string[];
  /** Where loaded kernel modules show up. */
  sysModule: string;
}

export const SYSTEM_PATHS: DoctorPaths = {
  socketDir: '/run/docker/plugins',
  specDirs: ['/etc/docker/plugins', '/usr/lib/docker/plugins'],
  sysModule: '/sys/module',
};

/** A managed (v2) plugin as `GET /plugins` describes it (the fields doctor reads). */
export interface ManagedPlugin {
  Id: string;
  Name: string;
  Enabled: boolean;
  Config?: { Entrypoint?: string[] | null; Interface?: { Socket?: string; Types?: { Capability?: string }[] } };
}

/** Message of any thrown value, on one line. */
export function messageOf(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return text.replace(/\s*\n\s*/g, ' ').trim();
}

/** `code` of a Node system error (`ENOENT`, `ECONNREFUSED`, ...), searching the cause chain. */
export function errnoOf(err: unknown): string | undefined {
  for (let e: unknown = err, depth = 0; e !== undefined && e !== null && depth < 5; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) return code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}
