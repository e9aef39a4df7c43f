/**
 * Summarizes a V8 CPU profile (`.cpuprofile`, as `node --cpu-prof` writes it; `npm run bench -- --profile`
 * profiles the plugin): self time by function and by file, idle time left out.
 *
 *   node bench/profile.ts <file.cpuprofile> [--top N]
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileLine {
  name: string;
  ms: number;
  share: number;
}

export interface ProfileSummary {
  /** Sampled time not idle, ms. */
  busyMs: number;
  byFunction: ProfileLine[];
  byFile: ProfileLine[];
}

function shortUrl(url: string): string {
  if (url === '') return '(native)';
  const file = url.startsWith('file://') ? fileURLToPath(url) : url;
  const i = file.indexOf('/node_modules/');
  if (i >= 0) return file.slice(i + 1);
  const d = file.indexOf('/dist/');
  return d >= 0 ? file.slice(d + 1) : file;
}

export function summarizeProfile(profile: CpuProfile, top = 20): ProfileSummary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  profile.samples.forEach((id, i) => {
    self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  });
  const fn = new Map<string, number>();
  const file = new Map<string, number>();
  let busy = 0;
  for (const [id, us] of self) {
    const frame = byId.get(id)?.callFrame;
    if (frame === undefined || frame.functionName === '(idle)') continue;
    busy += us;
    const where = shortUrl(frame.url);
    const name = `${frame.functionName || '(anonymous)'} ${where}${frame.url ? `:${frame.lineNumber + 1}` : ''}`;
    fn.set(name, (fn.get(name) ?? 0) + us);
    file.set(where, (file.get(where) ?? 0) + us);
  }
  const lines = (m: Map<string, number>) =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, us]) => ({ name, ms: Math.round(us / 100) / 10, share: Math.round((us / busy) * 1000) / 10 }));
  return { busyMs: Math.round(busy / 1000), byFunction: lines(fn), byFile: lines(file) };
}

export function renderProfile(summary: ProfileSummary): string {
  const block = (title: string, rows: ProfileLine[]) =>
    [
      title,
      ...rows.map((r) => `  ${r.ms.toFixed(1).padStart(8)} ms ${r.share.toFixed(1).padStart(5)}%  ${r.name}`),
    ].join('\n');
  return `busy ${summary.busyMs} ms\n${block('self time by function', summary.byFunction)}\n${block('self time by file', summary.byFile)}`;
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const [file, ...rest] = process.argv.slice(2);
  if (file === undefined) {
    process.stderr.write('usage: node bench/profile.ts <file.cpuprofile> [--top N]\n');
    process.exit(2);
  }
  const top = rest[0] === '--top' ? Number(rest[1]) : 20;
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  process.stdout.write(`${renderProfile(summarizeProfile(profile, top))}\n`);
}
