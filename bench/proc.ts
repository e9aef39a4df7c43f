/** What /proc says about a process: CPU time (utime + stime) and memory (VmHWM, VmRSS and its split). */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

let ticksPerSecond: number | undefined;

function clockTicks(): number {
  ticksPerSecond ??= Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  return ticksPerSecond;
}

/** CPU time the process has used so far (user + system, all its threads), in ms; resolution one clock tick. */
export function cpuMsOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return ((utime + stime) * 1000) / clockTicks();
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
