/**
 * How busy the machine was with things other than this benchmark: the run shares its 2 cores
 * with whatever else runs here, and a reader of RESULTS.md needs to know how much that was.
 */
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { descendants } from './processes.ts';

const HZ = 100;

/** CPU seconds the whole machine has spent busy (user, nice, system, irq, softirq) since boot. */
function machineBusySeconds(): number {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  return (f[0]! + f[1]! + f[2]! + f[5]! + f[6]!) / HZ;
}

/** CPU seconds of one process and its reaped children. */
function processSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ').map(Number);
    return (f[11]! + f[12]! + f[13]! + f[14]!) / HZ;
  } catch {
    return 0;
  }
}

/** CPU seconds of this process and every live descendant (children that ended count through their parent). */
function treeSeconds(): number {
  return [process.pid, ...descendants(process.pid)].reduce((sum, pid) => sum + processSeconds(pid), 0);
}

/** Starts measuring; the returned function gives the average number of cores other processes kept busy since (NaN under a second). */
export function backgroundMeter(): () => number {
  const t0 = performance.now();
  const machine0 = machineBusySeconds();
  const tree0 = treeSeconds();
  return () => {
    const wall = (performance.now() - t0) / 1000;
    if (wall < 1) return NaN;
    const other = machineBusySeconds() - machine0 - (treeSeconds() - tree0);
    return Math.max(0, Math.min(cpus().length, other / wall));
  };
}

/** CPU seconds of `pid`, and of everything below it when `withDescendants`. */
export function cpuSecondsOf(pid: number, withDescendants: boolean): number {
  return [pid, ...(withDescendants ? descendants(pid) : [])].reduce((sum, p) => sum + processSeconds(p), 0);
}
