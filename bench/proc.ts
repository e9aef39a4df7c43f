/** What /proc says about a process: CPU time (utime + stime) and memory (VmHWM, VmRSS and its split). */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

let ticksPerSecond: number | undefined;

function clockTicks(): number {
  ticksPerSecond ??= Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  return ticksPerSecond;
}

/** The fields of /proc/<pid>/stat after the command name (which may hold spaces): index 0 is field 3 (state). */
function statFields(pid: number): string[] {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/** User and system CPU time the process has used so far (all its threads), in ms; resolution one clock tick. */
export function cpuSplitOf(pid: number): { user: number; system: number } {
  const fields = statFields(pid);
  // utime is field 14, stime 15.
  return { user: (Number(fields[11]) * 1000) / clockTicks(), system: (Number(fields[12]) * 1000) / clockTicks() };
}

/** CPU time the process has used so far (user + system, all its threads), in ms; resolution one clock tick. */
export function cpuMsOf(pid: number): number {
  const { user, system } = cpuSplitOf(pid);
  return user + system;
}

/** The live children of a process (every thread's), from /proc/<pid>/task/<tid>/children. */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const text = readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim();
      if (text !== '') out.push(...text.split(' ').map(Number));
    } catch {
      // The thread ended meanwhile.
    }
  }
  return out;
}

/**
 * CPU time of a process and everything it ran, in ms: its own user + system time, that of its children it has
 * waited for (cutime + cstime: the short-lived `iptables`, `nft`, `ip`), and that of its live descendants so far
 * (the long-lived `ip -batch` and `nft -i` sessions). A child's time moves from "live" to "waited for" when it
 * ends, so the sum does not jump. A process that ends while being read counts as nothing for that reading.
 */
export function treeCpuMsOf(pid: number): number {
  let fields: string[];
  try {
    fields = statFields(pid);
  } catch {
    return 0;
  }
  // utime 14, stime 15, cutime 16, cstime 17.
  const ticks = Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14]);
  let ms = (ticks * 1000) / clockTicks();
  let children: number[] = [];
  try {
    children = childrenOf(pid);
  } catch {
    // Ended meanwhile.
  }
  for (const child of children) ms += treeCpuMsOf(child);
  return ms;
}

export interface MemoryStatus {
  /** Peak resident set size (VmHWM), MiB */
  peakRssMiB: number;
  /** Current resident set size (VmRSS), MiB */
  rssMiB: number;
  /** Anonymous part of the RSS (heap, stacks), MiB */
  rssAnonMiB: number;
  /** File-backed part of the RSS (mapped executable and libraries, shared with other processes), MiB */
  rssFileMiB: number;
}

/** Memory figures of /proc/<pid>/status, in MiB. */
export function memoryOf(pid: number): MemoryStatus {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? Number.NaN);
  const mib = (key: string) => Math.round((kib(key) / 1024) * 10) / 10;
  return { peakRssMiB: mib('VmHWM'), rssMiB: mib('VmRSS'), rssAnonMiB: mib('RssAnon'), rssFileMiB: mib('RssFile') };
}
