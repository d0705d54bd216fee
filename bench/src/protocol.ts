/**
 * What the benchmark's processes say to each other over Node's IPC channel. Every process the
 * orchestrator starts answers requests that carry an `id` with a message carrying the same `id`.
 */

/** Where a load generator sends its requests. */
export interface Target {
  /** `http://127.0.0.1:<port>` */
  origin: string;
  /** The chat-completions path, e.g. `/v1/chat/completions`. */
  path: string;
  headers: Record<string, string>;
}

/** Sent by a server process once it listens. */
export interface ReadyMessage {
  type: "ready";
  origin: string;
  /** The chat-completions path on this server. */
  path: string;
  /** The model id clients name on this server. */
  model: string;
  /** The bearer token to send, when the server wants one. */
  apiKey: string | null;
}

/** A server process's memory, measured after a forced full GC. Bytes. */
export interface MemorySample {
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  arrayBuffers: number;
  /** Open TCP sockets in the process (listening sockets excluded). */
  sockets: number;
}

/** CPU the process has used since it started, user + system, in microseconds. */
export interface CpuSample {
  cpuMicros: number;
  /** The part of `cpuMicros` spent in the kernel (syscalls, and loopback TCP done on the sender's behalf). */
  systemMicros: number;
  /** Page faults served without I/O: fresh memory being touched, most of the kernel's part beyond syscalls. */
  minorPageFaults: number;
  contextSwitches: number;
}

export type ServerRequest =
  | { id: number; type: "memory" }
  | { id: number; type: "cpu" }
  | { id: number; type: "allocations"; action: "start" | "stop" }
  | { id: number; type: "phase-timings"; action: "start" | "stop" }
  | { id: number; type: "close" };

/** Medians, in µs, of where a server's requests spent their time (`phase-timings.ts`). */
export interface PhaseTimingsSample {
  requests: number;
  /** From Node's parse of the request's headers to the upstream request's headers going out. */
  beforeUpstreamMicros: number;
  /** From then to the upstream's response headers. */
  upstreamMicros: number;
  /** From then to the answer's 'finish' (see phase-timings.ts for what that holds). */
  relayMicros: number;
  /**
   * From the end of one answer to the next request's headers: the client's share of the round
   * trip and both hops, plus whatever the server still runs after answering.
   */
  outsideMicros: number;
}

/**
 * What a server allocated on its heap between an `allocations` start and stop, from V8's sampling
 * heap profiler counting collected objects too: bytes in all, and by allocating function.
 */
export interface AllocationSample {
  bytes: number;
  sites: Array<{ site: string; bytes: number }>;
}

export interface CellRequest {
  id: number;
  type: "cell";
  target: Target;
  /** The request body, already serialized. */
  body: string;
  stream: boolean;
  concurrency: number;
  warmupMs: number;
  durationMs: number;
}

export interface OpenStreamsRequest {
  id: number;
  type: "open-streams";
  target: Target;
  body: string;
  count: number;
  timeoutMs: number;
}

export type LoadRequest = CellRequest | OpenStreamsRequest | { id: number; type: "close-streams" } | { id: number; type: "close" };

/** Sent (without an id) by the load generator when its warm-up ends and the measured window opens. */
export interface MeasureStartMessage {
  type: "measure-start";
}

export interface LatencySummary {
  p50: number;
  p99: number;
  mean: number;
}

export interface CellResult {
  /** Requests started in the measured window that completed correctly. */
  requests: number;
  /** Failed requests in the measured window: a non-200, a transport error, a stream without [DONE]. */
  errors: number;
  /** From the window's start to the last completion, in ms. */
  elapsedMs: number;
  requestsPerSecond: number;
  /** Whole-response latency, µs. */
  latency: LatencySummary;
  /** Streams: time to the first content delta, µs. Null for non-streaming cells. */
  firstToken: LatencySummary | null;
  /** The load generator's own CPU per request, µs: what the client costs on the shared cores. */
  clientCpuPerRequest: number;
}

export interface OpenStreamsResult {
  /** Streams that delivered their first content delta. */
  opened: number;
  errors: number;
  elapsedMs: number;
}
