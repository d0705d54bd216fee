/**
 * The IPC side every benchmarked server process shares: it announces where it listens and answers
 * the orchestrator's memory, CPU and close requests. Servers run with `--expose-gc`, so a memory
 * sample is taken after forced full collections and measures what is live, not what is garbage.
 */
import { Session } from "node:inspector/promises";
import { setImmediate as nextTurn } from "node:timers/promises";
import { phaseTimings } from "./phase-timings.js";
import type { AllocationSample, CpuSample, MemorySample, ReadyMessage, ServerRequest } from "./protocol.js";

function send(message: object): void {
  process.send?.(message);
}

/** Open TCP connections of this process: one `TCPSocketWrap` each (listening sockets are `TCPServerWrap`). */
function openSockets(): number {
  let count = 0;
  for (const resource of process.getActiveResourcesInfo()) if (resource === "TCPSocketWrap") count++;
  return count;
}

export async function sampleMemory(): Promise<MemorySample> {
  const gc = globalThis.gc;
  if (gc === undefined) throw new Error("start the server with --expose-gc");
  // Two collections a turn apart: the first runs finalizers and weak callbacks that free more.
  gc();
  await nextTurn();
  gc();
  const usage = process.memoryUsage();
  return {
    rss: usage.rss,
    heapUsed: usage.heapUsed,
    heapTotal: usage.heapTotal,
    external: usage.external,
    arrayBuffers: usage.arrayBuffers,
    sockets: openSockets(),
  };
}

function sampleCpu(): CpuSample {
  const usage = process.resourceUsage();
  return {
    cpuMicros: usage.userCPUTime + usage.systemCPUTime,
    systemMicros: usage.systemCPUTime,
    minorPageFaults: usage.minorPageFault,
    contextSwitches: usage.voluntaryContextSwitches + usage.involuntaryContextSwitches,
  };
}

interface SamplingNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: SamplingNode[];
}

let allocationSession: Session | null = null;

/**
 * Samples every allocation, kept or collected, about one per `samplingInterval` bytes: V8 scales
 * each sample by its odds, so the sums estimate what was allocated, not what survived. Allocation
 * is the one cost of a request that repeats exactly on a noisy machine, and what the scavenger's
 * pauses grow with.
 */
export async function allocations(action: "start" | "stop"): Promise<AllocationSample> {
  if (action === "start") {
    allocationSession ??= new Session();
    allocationSession.connect();
    await allocationSession.post("HeapProfiler.startSampling", {
      samplingInterval: 512,
      includeObjectsCollectedByMajorGC: true,
      includeObjectsCollectedByMinorGC: true,
    });
    return { bytes: 0, sites: [] };
  }
  if (allocationSession === null) throw new Error("allocation sampling was not started");
  const { profile } = (await allocationSession.post("HeapProfiler.stopSampling")) as { profile: { head: SamplingNode } };
  allocationSession.disconnect();
  const bySite = new Map<string, number>();
  // BENCH_ALLOCATION_FRAMES=3: a site is the allocating function and its two nearest callers.
  const frames = Math.max(1, Number(process.env.BENCH_ALLOCATION_FRAMES ?? 1));
  let bytes = 0;
  const walk = (node: SamplingNode, callers: string[]) => {
    const { functionName, url, lineNumber } = node.callFrame;
    const name = `${functionName || "(anonymous)"} ${url.replace(/^.*\/(node_modules|packages)\//, "")}:${lineNumber + 1}`;
    const stack = [name, ...callers].slice(0, frames);
    if (node.selfSize > 0) {
      const site = stack.join(" < ");
      bySite.set(site, (bySite.get(site) ?? 0) + node.selfSize);
      bytes += node.selfSize;
    }
    for (const child of node.children) walk(child, stack);
  };
  walk(profile.head, []);
  const sites = [...bySite].map(([site, siteBytes]) => ({ site, bytes: siteBytes })).sort((left, right) => right.bytes - left.bytes);
  return { bytes, sites: sites.slice(0, 25) };
}

/**
 * Announces the server and serves the orchestrator until it asks to close. `close` should stop
 * listening and release the server's own resources; the process then exits, which is also what
 * writes a `--cpu-prof` profile.
 */
export function serveControl(ready: Omit<ReadyMessage, "type">, close: () => Promise<void>): void {
  process.on("message", (message: ServerRequest) => {
    void answer(message, close);
  });
  // The orchestrator going away (a crash, Ctrl-C) must not leave servers behind.
  process.on("disconnect", () => process.exit(0));
  send({ type: "ready", ...ready } satisfies ReadyMessage);
}

async function answer(message: ServerRequest, close: () => Promise<void>): Promise<void> {
  switch (message.type) {
    case "memory":
      send({ id: message.id, ...(await sampleMemory()) });
      return;
    case "cpu":
      send({ id: message.id, ...sampleCpu() });
      return;
    case "allocations":
      send({ id: message.id, ...(await allocations(message.action)) });
      return;
    case "phase-timings":
      send({ id: message.id, ...phaseTimings(message.action) });
      return;
    case "close":
      await Promise.race([close(), new Promise((resolve) => setTimeout(resolve, 2_000))]);
      // Exit only once the reply has left: process.send is asynchronous.
      process.send?.({ id: message.id }, () => process.exit(0));
  }
}
