/**
 * `node --import tsx bench/profile-summary.ts FILE.cpuprofile [TOP]`: the hottest frames of a
 * V8 CPU profile (from `npm run bench -- --profile`), by self time and by total time, with
 * the share of all samples each takes. Frames are grouped by function, file and line.
 */
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { ROOT } from './processes.ts';

interface ProfileNode { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; hitCount?: number; children?: number[] }
interface Profile { nodes: ProfileNode[]; samples?: number[]; timeDeltas?: number[]; startTime: number; endTime: number }

/** "name (file:line)" with paths made short. */
function frameName(n: ProfileNode): string {
  const { functionName, url, lineNumber } = n.callFrame;
  const file = url.replace(/^file:\/\//, '');
  const short = file.startsWith(ROOT) ? relative(ROOT, file) : file.replace(/^node:/, 'node:');
  return `${functionName || '(anonymous)'}${short ? ` (${short}:${lineNumber + 1})` : ''}`;
}

/** Self and total sample counts per frame name, and the total sample count. */
export function summarizeProfile(profile: Profile): { self: Map<string, number>; total: Map<string, number>; samples: number; ms: number } {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const hits = new Map<number, number>();
  if (profile.samples?.length) for (const s of profile.samples) hits.set(s, (hits.get(s) ?? 0) + 1);
  else for (const n of profile.nodes) hits.set(n.id, n.hitCount ?? 0);
  const self = new Map<string, number>();
  const total = new Map<string, number>();
  let samples = 0;
  for (const [id, count] of hits) {
    samples += count;
    const name = frameName(byId.get(id)!);
    self.set(name, (self.get(name) ?? 0) + count);
    // Count each frame name once per stack, however often it recurses.
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const n = frameName(byId.get(cur)!);
      if (seen.has(n)) continue;
      seen.add(n);
      total.set(n, (total.get(n) ?? 0) + count);
    }
  }
  return { self, total, samples, ms: (profile.endTime - profile.startTime) / 1000 };
}

/** The `n` largest entries as "percent of busy samples  frame", leaving out idle time. */
function top(map: Map<string, number>, busy: number, n: number): string {
  return [...map].filter(([name]) => !['(idle)', '(root)'].includes(name)).sort((a, b) => b[1] - a[1]).slice(0, n)
    .map(([name, c]) => `${((100 * c) / busy).toFixed(1).padStart(5)}%  ${name}`).join('\n');
}

if (process.argv[1]?.endsWith('profile-summary.ts')) {
  const [file, count] = process.argv.slice(2);
  if (!file) {
    process.stderr.write('usage: node --import tsx bench/profile-summary.ts FILE.cpuprofile [TOP]\n');
    process.exit(2);
  }
  const s = summarizeProfile(JSON.parse(readFileSync(file, 'utf8')) as Profile);
  const n = Number(count ?? 25);
  const busy = s.samples - (s.self.get('(idle)') ?? 0);
  process.stdout.write(`${file}: ${s.samples} samples over ${(s.ms / 1000).toFixed(1)} s, ${((100 * busy) / s.samples).toFixed(1)}% busy; percentages below are of the busy samples\n\n`);
  process.stdout.write(`by self time:\n${top(s.self, busy, n)}\n\nby total time (the frame and what it calls):\n${top(s.total, busy, n)}\n`);
}
