/**
 * Reads a V8 `.cpuprofile` (from `node --cpu-prof`, e.g. BENCH_PROFILE=1) and prints where the
 * time went: the functions with the most self time, and self time summed by source file. With a
 * third argument, also who calls the functions whose name contains it (self time below them, by
 * their three nearest callers).
 *
 *   node dist/profile-summary.js bench-results/profiles/<file>.cpuprofile [top=30] [function]
 */
import { readFileSync } from "node:fs";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

const [file, topArgument, callersOf] = process.argv.slice(2);
if (file === undefined) {
  process.stderr.write("usage: node dist/profile-summary.js <file.cpuprofile> [top]\n");
  process.exit(2);
}
const top = Number(topArgument ?? 30);
const profile = JSON.parse(readFileSync(file, "utf8")) as CpuProfile;

const selfTime = new Map<number, number>();
for (let index = 0; index < profile.samples.length; index++) {
  const id = profile.samples[index]!;
  selfTime.set(id, (selfTime.get(id) ?? 0) + (profile.timeDeltas[index] ?? 0));
}
const total = [...selfTime.values()].reduce((sum, value) => sum + value, 0);

function shortUrl(url: string): string {
  if (url === "") return "(native)";
  const packages = url.lastIndexOf("/packages/");
  if (packages !== -1) return url.slice(packages + 1);
  const modules = url.lastIndexOf("/node_modules/");
  if (modules !== -1) return url.slice(modules + "/node_modules/".length);
  return url.replace(/^file:\/\//, "");
}

const byFunction = new Map<string, number>();
const byFile = new Map<string, number>();
for (const node of profile.nodes) {
  const time = selfTime.get(node.id) ?? 0;
  if (time === 0) continue;
  const frame = node.callFrame;
  const where = shortUrl(frame.url);
  const name = `${frame.functionName || "(anonymous)"}  ${where}:${frame.lineNumber + 1}`;
  byFunction.set(name, (byFunction.get(name) ?? 0) + time);
  byFile.set(where, (byFile.get(where) ?? 0) + time);
}

function print(title: string, entries: Map<string, number>): void {
  process.stdout.write(`\n${title}\n`);
  const sorted = [...entries].sort((a, b) => b[1] - a[1]).slice(0, top);
  for (const [name, time] of sorted) {
    process.stdout.write(`${((time / total) * 100).toFixed(1).padStart(5)}%  ${(time / 1000).toFixed(0).padStart(7)} ms  ${name}\n`);
  }
}

process.stdout.write(`${file}: ${(total / 1000).toFixed(0)} ms sampled\n`);
print("Self time by function", byFunction);
print("Self time by file", byFile);

// Inclusive time: each sample counts once for every distinct function on its stack. Shares are of
// the busy time (idle excluded), so a function's row reads as "this much of the work ran under it".
{
  const parentOf = new Map<number, ProfileNode>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parentOf.set(child, node);
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const inclusiveByFunction = new Map<string, number>();
  let busy = 0;
  for (const [id, time] of selfTime) {
    const leaf = byId.get(id)!;
    if (leaf.callFrame.functionName === "(idle)") continue;
    busy += time;
    const seen = new Set<string>();
    for (let node: ProfileNode | undefined = leaf; node !== undefined; node = parentOf.get(node.id)) {
      const frame = node.callFrame;
      if (frame.functionName === "(root)") continue;
      const name = `${frame.functionName || "(anonymous)"}  ${shortUrl(frame.url)}:${frame.lineNumber + 1}`;
      if (seen.has(name)) continue;
      seen.add(name);
      inclusiveByFunction.set(name, (inclusiveByFunction.get(name) ?? 0) + time);
    }
  }
  process.stdout.write(`\nTotal time by function (inclusive), as a share of ${(busy / 1000).toFixed(0)} ms busy\n`);
  const sorted = [...inclusiveByFunction].sort((a, b) => b[1] - a[1]).slice(0, top);
  for (const [name, time] of sorted) {
    process.stdout.write(`${((time / busy) * 100).toFixed(1).padStart(5)}%  ${(time / 1000).toFixed(0).padStart(7)} ms  ${name}\n`);
  }
}

if (callersOf !== undefined) {
  const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
  const parents = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parents.set(child, node.id);
  const frameName = (node: ProfileNode) => `${node.callFrame.functionName || "(anonymous)"} ${shortUrl(node.callFrame.url)}:${node.callFrame.lineNumber + 1}`;
  // Time spent in a matching function (and below it), attributed to its caller chain.
  const inclusive = new Map<number, number>();
  const addUp = (node: ProfileNode): number => {
    let time = selfTime.get(node.id) ?? 0;
    for (const child of node.children ?? []) time += addUp(nodes.get(child)!);
    inclusive.set(node.id, time);
    return time;
  };
  addUp(profile.nodes[0]!);
  const chains = new Map<string, number>();
  for (const node of profile.nodes) {
    if (!node.callFrame.functionName.includes(callersOf)) continue;
    const chain = [frameName(node)];
    let parent = parents.get(node.id);
    for (let depth = 0; depth < 3 && parent !== undefined; depth++) {
      const parentNode = nodes.get(parent)!;
      chain.push(frameName(parentNode));
      parent = parents.get(parent);
    }
    const key = chain.join("  <-  ");
    chains.set(key, (chains.get(key) ?? 0) + (inclusive.get(node.id) ?? 0));
  }
  print(`Time in '${callersOf}' (inclusive), by caller chain`, chains);
}
