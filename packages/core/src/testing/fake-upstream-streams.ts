/**
 * Builds the fake upstream's SSE streams as strings, and writes them with backpressure.
 *
 * A stream is a plan: a head (the role chunk), the countable chunks (content words, tool-call
 * deltas, or replayed pieces), and a tail (finish, usage, `[DONE]`). Chunk strings are assembled
 * from a per-request envelope and per-profile cached choice strings, so the hot path does string
 * concatenation only: no JSON.stringify per content chunk.
 */
import { readFileSync } from "node:fs";
import type { ServerResponse } from "node:http";
import { join } from "node:path";
import { fakeReplyWord, fakeToolCalls } from "./fake-upstream-content.js";
import { renderStreamErrorData, timingsFields, usageFields } from "./fake-upstream-profiles.js";
import type { FakeUpstreamProfile, ProfileSpec } from "./fake-upstream-profiles.js";

export interface StreamPlan {
  head: string;
  /** How many countable chunks the stream has. */
  count: number;
  /**
   * Renders countable chunk `index` (0-based, < count) on demand, so a stream of millions of
   * chunks (a backpressure test's) costs no memory up front.
   */
  chunk(index: number): string | Uint8Array;
  tail: string;
}

export interface ChatStreamInput {
  spec: ProfileSpec;
  id: string;
  created: number;
  /** The model name, already JSON-encoded. */
  modelJson: string;
  promptTokens: number;
  contentCount: number;
  finishReason: string;
  includeUsage: boolean;
  toolCalls: boolean;
  counter: number;
}

interface Envelope {
  before: string;
  after: string;
}

function chatEnvelope(spec: ProfileSpec, id: string, created: number, modelJson: string, object: string): Envelope {
  const fingerprint = spec.systemFingerprint === null ? "" : `,"system_fingerprint":"${spec.systemFingerprint}"`;
  switch (spec.envelope) {
    case "openai": {
      const tier = spec.serviceTier ? ',"service_tier":"default"' : "";
      return {
        before: `${spec.dataPrefix}{"id":"${id}","object":"${object}","created":${created},"model":${modelJson}${tier}${fingerprint},"choices":[`,
        after: "]",
      };
    }
    case "tgi":
      return {
        before: `${spec.dataPrefix}{"object":"${object}","id":"${id}","created":${created},"model":${modelJson}${fingerprint},"choices":[`,
        after: "]",
      };
    case "llamacpp":
      return {
        before: `${spec.dataPrefix}{"choices":[`,
        after: `],"created":${created},"id":"${id}","model":${modelJson}${fingerprint},"object":"${object}"`,
      };
  }
}

function renderChoice(spec: ProfileSpec, delta: string, finishReason: string | null): string {
  const reason = finishReason === null ? "null" : `"${finishReason}"`;
  switch (spec.choice) {
    case "openai":
      return `{"index":0,"delta":${delta},"logprobs":null,"finish_reason":${reason}}`;
    case "vllm":
      return `{"index":0,"delta":${delta},"logprobs":null,"finish_reason":${reason},"stop_reason":null}`;
    case "ollama":
      return `{"index":0,"delta":${delta},"finish_reason":${reason}}`;
    case "llamacpp":
      return `{"finish_reason":${reason},"index":0,"delta":${delta}}`;
  }
}

/** Wraps a delta body (`"content":"x"`) in the profile's delta object, repeating the role where it does. */
function delta(spec: ProfileSpec, members: string): string {
  return spec.roleChunkDelta === null ? `{"role":"assistant",${members}}` : `{${members}}`;
}

// Content choices never change for a profile and word: built once, reused by every request. Keyed
// by the word (the reply cycles through a few), so a stream of a million chunks adds no entries.
const contentChoiceCache = new Map<FakeUpstreamProfile, Map<string, string>>();

function contentChoice(spec: ProfileSpec, index: number): string {
  let cache = contentChoiceCache.get(spec.name);
  if (cache === undefined) {
    cache = new Map();
    contentChoiceCache.set(spec.name, cache);
  }
  const word = fakeReplyWord(index);
  let choice = cache.get(word);
  if (choice === undefined) {
    choice = renderChoice(spec, delta(spec, `"content":${JSON.stringify(word)}`), null);
    cache.set(word, choice);
  }
  return choice;
}

function usageMember(spec: ProfileSpec, promptTokens: number, completionTokens: number): string {
  return `,"usage":${JSON.stringify(usageFields(spec.usageStyle, promptTokens, completionTokens))}`;
}

function toolDeltas(spec: ProfileSpec, counter: number): string[] {
  const deltas: string[] = [];
  fakeToolCalls.forEach((call, index) => {
    const id = spec.toolCallId(counter, index);
    if (spec.wholeToolCalls) {
      const argumentsJson = JSON.stringify(call.fragments.join(""));
      deltas.push(
        delta(spec, `"content":"","tool_calls":[{"id":"${id}","index":${index},"type":"function","function":{"name":"${call.name}","arguments":${argumentsJson}}}]`),
      );
      return;
    }
    const headerArguments = spec.toolHeaderArguments ? ',"arguments":""' : "";
    deltas.push(
      delta(spec, `"tool_calls":[{"index":${index},"id":"${id}","type":"function","function":{"name":"${call.name}"${headerArguments}}}]`),
    );
    for (const fragment of call.fragments) {
      deltas.push(delta(spec, `"tool_calls":[{"index":${index},"function":{"arguments":${JSON.stringify(fragment)}}}]`));
    }
  });
  return deltas;
}

/** How many completion tokens a tool-call response counts in this profile: one per delta chunk. */
export function toolCallTokens(spec: ProfileSpec): number {
  if (spec.wholeToolCalls) return fakeToolCalls.length;
  let count = 0;
  for (const call of fakeToolCalls) count += 1 + call.fragments.length;
  return count;
}

/** A chat-completion stream in the profile's wire shape. */
export function planChatStream(input: ChatStreamInput): StreamPlan {
  const { spec, promptTokens } = input;
  const { before, after } = chatEnvelope(spec, input.id, input.created, input.modelJson, spec.chunkObject);
  const usageRequested = input.includeUsage && spec.usage !== "never";
  const usageEveryChunk = usageRequested && spec.usage === "every-chunk";
  const nullMember =
    spec.usageNull === "always" || (spec.usageNull === "when-requested" && usageRequested) ? ',"usage":null' : "";
  const memberAt = (completionTokens: number): string =>
    usageEveryChunk ? usageMember(spec, promptTokens, completionTokens) : nullMember;

  const toolDeltaList = input.toolCalls ? toolDeltas(spec, input.counter) : null;
  const count = toolDeltaList === null ? input.contentCount : toolDeltaList.length;
  const finishReason = input.finishReason;

  let head = "";
  const roleDelta = input.toolCalls ? spec.toolRoleChunkDelta : spec.roleChunkDelta;
  if (roleDelta !== null) head = before + renderChoice(spec, roleDelta, null) + after + memberAt(0) + "}\n\n";

  const chunk = (index: number): string => {
    const lastCarriesFinish = spec.finish === "last-content" && index === count - 1;
    let choice: string;
    if (toolDeltaList !== null) {
      choice = renderChoice(spec, toolDeltaList[index] ?? "{}", lastCarriesFinish ? finishReason : null);
    } else if (lastCarriesFinish) {
      choice = renderChoice(spec, delta(spec, `"content":${JSON.stringify(fakeReplyWord(index))}`), finishReason);
    } else {
      choice = contentChoice(spec, index);
    }
    return before + choice + after + memberAt(index + 1) + "}\n\n";
  };

  let finishMember = memberAt(count);
  if (spec.usage === "finish-chunk") {
    finishMember = usageRequested ? usageMember(spec, promptTokens, count) : "";
    if (spec.timings) finishMember += `,"timings":${JSON.stringify(timingsFields(promptTokens, count))}`;
  }
  let tail = "";
  if (spec.finish === "empty-delta") {
    tail += before + renderChoice(spec, "{}", finishReason) + after + finishMember + "}\n\n";
  } else if (spec.finish === "empty-content" || count === 0) {
    tail += before + renderChoice(spec, delta(spec, '"content":""'), finishReason) + after + finishMember + "}\n\n";
  }
  if (usageRequested && (spec.usage === "final-chunk" || spec.usage === "every-chunk")) {
    tail += before + after + usageMember(spec, promptTokens, count) + "}\n\n";
  }
  if (spec.doneEvent !== null) tail += spec.doneEvent;
  return { head, count, chunk, tail };
}

export interface CompletionStreamInput {
  spec: ProfileSpec;
  id: string;
  created: number;
  modelJson: string;
  promptTokens: number;
  contentCount: number;
  finishReason: string;
  includeUsage: boolean;
}

/**
 * A legacy `/v1/completions` stream. Every profile uses OpenAI's layout for it (text chunks, a
 * final empty-text chunk with the finish reason, a `choices:[]` usage chunk when asked), framed
 * with the profile's `data:` prefix and terminator.
 */
export function planCompletionStream(input: CompletionStreamInput): StreamPlan {
  const { spec } = input;
  const fingerprint = spec.systemFingerprint === null ? "" : `,"system_fingerprint":"${spec.systemFingerprint}"`;
  const before = `${spec.dataPrefix}{"id":"${input.id}","object":"text_completion","created":${input.created},"choices":[`;
  const after = `],"model":${input.modelJson}${fingerprint}`;
  const chunk = (index: number): string =>
    `${before}{"text":${JSON.stringify(fakeReplyWord(index))},"index":0,"logprobs":null,"finish_reason":null}${after}}\n\n`;
  let tail = `${before}{"text":"","index":0,"logprobs":null,"finish_reason":"${input.finishReason}"}${after}}\n\n`;
  if (input.includeUsage && spec.usage !== "never") {
    tail += before + after + usageMember(spec, input.promptTokens, input.contentCount) + "}\n\n";
  }
  if (spec.doneEvent !== null) tail += spec.doneEvent;
  return { head: "", count: input.contentCount, chunk, tail };
}

/** The in-stream error event of `fake.errorEventAfterChunks`, in the profile's framing and shape. */
export function streamErrorEvent(spec: ProfileSpec): string {
  return `${spec.dataPrefix}${renderStreamErrorData(spec.errorStyle)}\n\n`;
}

const replayCache = new Map<string, Buffer>();
const replayNamePattern = /^[\w.-]+$/;

/**
 * A capture's bytes from its first `data:` line on (the leading `: ` comment block is the
 * fixture's provenance, not upstream traffic). Null when the name is unsafe or no such file exists.
 */
export function loadReplay(directory: string, name: string): Buffer | null {
  if (!replayNamePattern.test(name) || name.startsWith(".")) return null;
  const fileName = name.endsWith(".txt") ? name : `${name}.txt`;
  const path = join(directory, fileName);
  let bytes = replayCache.get(path);
  if (bytes === undefined) {
    let file: Buffer;
    try {
      file = readFileSync(path);
    } catch {
      return null;
    }
    const startsWithData = file.subarray(0, 5).toString("latin1") === "data:";
    // indexOf gives -1 when there is no data line at all: then the capture replays as nothing.
    const start = startsWithData ? 0 : file.indexOf("\ndata:") + 1;
    bytes = !startsWithData && start === 0 ? Buffer.alloc(0) : file.subarray(start);
    replayCache.set(path, bytes);
  }
  return bytes;
}

/** Splits replayed bytes into pieces: fixed-size slices, or whole events (ending in a blank line). */
export function splitReplay(bytes: Buffer, pieceBytes: number | undefined, byEvent: boolean): Uint8Array[] {
  if (pieceBytes !== undefined && pieceBytes > 0) {
    const pieces: Uint8Array[] = [];
    for (let offset = 0; offset < bytes.length; offset += pieceBytes) pieces.push(bytes.subarray(offset, offset + pieceBytes));
    return pieces;
  }
  if (!byEvent) return [bytes];
  const pieces: Uint8Array[] = [];
  let start = 0;
  for (;;) {
    const boundary = bytes.indexOf("\n\n", start);
    if (boundary === -1) break;
    pieces.push(bytes.subarray(start, boundary + 2));
    start = boundary + 2;
  }
  if (start < bytes.length) pieces.push(bytes.subarray(start));
  return pieces;
}

/** The per-request stream knobs of `fake`. */
export interface StreamControl {
  intervalMs?: number;
  failAfterChunks?: number;
  errorEventAfterChunks?: number;
  hangAfterChunks?: number;
}

/** True when the stream has no pacing or failure: it can go out in one write. */
export function isPlainStream(control: StreamControl): boolean {
  return (
    (control.intervalMs ?? 0) <= 0 &&
    control.failAfterChunks === undefined &&
    control.errorEventAfterChunks === undefined &&
    control.hangAfterChunks === undefined
  );
}

/** Resolves when the response closes: the client went away, or the socket was destroyed. */
export function whenClosed(response: ServerResponse): Promise<void> {
  if (response.destroyed) return Promise.resolve();
  return new Promise((resolve) => response.once("close", () => resolve()));
}

/** Waits `milliseconds`, or less if the response closes first; resolves true while still open. */
export function pause(response: ServerResponse, milliseconds: number): Promise<boolean> {
  if (response.destroyed) return Promise.resolve(false);
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      response.off("close", done);
      resolve(!response.destroyed);
    };
    const timer = setTimeout(done, milliseconds);
    response.once("close", done);
  });
}

function waitForDrain(response: ServerResponse): Promise<boolean> {
  return new Promise((resolve) => {
    const done = (): void => {
      response.off("drain", done);
      response.off("close", done);
      resolve(!response.destroyed);
    };
    response.on("drain", done);
    response.on("close", done);
  });
}

/** Resolves once everything written so far has left the socket; false if it closed first. */
function flushed(response: ServerResponse): Promise<boolean> {
  const socket = response.socket;
  if (socket === null || socket.destroyed) return Promise.resolve(false);
  // An empty write's callback runs after every earlier write has been handed to the kernel.
  return new Promise((resolve) => socket.write("", () => resolve(!response.destroyed)));
}

/** Writes one piece; when the socket's buffer is full, waits for 'drain' before saying go on. */
function writePiece(response: ServerResponse, piece: string | Uint8Array): boolean | Promise<boolean> {
  if (response.destroyed) return false;
  if (response.write(piece)) return true;
  return waitForDrain(response);
}

export interface WriteStreamOptions {
  response: ServerResponse;
  plan: StreamPlan;
  control: StreamControl;
  /** The event `errorEventAfterChunks` sends. */
  errorEvent: string;
  /** Called just before the fake destroys the socket on purpose, so it is not recorded as a client abort. */
  onDestroy: () => void;
  /** Called after each write with its size in bytes and how many countable chunks it held. */
  onWrite?: (bytes: number, chunks: number) => void;
}

/** Plain streams up to this many chunks go out in one write; longer ones piece by piece, with backpressure. */
const oneWriteChunkLimit = 4_096;

/** The whole plan as one string, or null when it is too long for one write or holds bytes (a replay). */
function wholeText(plan: StreamPlan): string | null {
  if (plan.count > oneWriteChunkLimit) return null;
  let text = plan.head;
  for (let index = 0; index < plan.count; index++) {
    const chunk = plan.chunk(index);
    if (typeof chunk !== "string") return null;
    text += chunk;
  }
  return text + plan.tail;
}

function byteLength(piece: string | Uint8Array): number {
  return typeof piece === "string" ? Buffer.byteLength(piece) : piece.byteLength;
}

/**
 * Writes a planned stream. Headers must already be set. Without pacing or failure knobs a stream
 * of up to a few thousand chunks goes out in one write (the benchmark's floor); otherwise chunk
 * by chunk, waiting for 'drain' when the socket pushes back, and stopping as soon as the client
 * goes away.
 */
export async function writeStream(options: WriteStreamOptions): Promise<void> {
  const { response, plan, control, onWrite } = options;
  const write = (piece: string | Uint8Array, chunks: number): boolean | Promise<boolean> => {
    if (response.destroyed) return false;
    onWrite?.(byteLength(piece), chunks);
    return writePiece(response, piece);
  };
  if (isPlainStream(control)) {
    const whole = wholeText(plan);
    if (whole !== null) {
      response.write(whole);
      onWrite?.(Buffer.byteLength(whole), plan.count);
    } else {
      if (plan.head !== "" && !(await write(plan.head, 0))) return;
      for (let index = 0; index < plan.count; index++) if (!(await write(plan.chunk(index), 1))) return;
      if (plan.tail !== "" && !(await write(plan.tail, 0))) return;
    }
    response.end();
    return;
  }
  const intervalMs = control.intervalMs ?? 0;
  if (plan.head !== "" && !(await write(plan.head, 0))) return;
  for (let index = 0; ; index++) {
    if (index === control.failAfterChunks) {
      // Let the chunks already written reach the client first: destroy() discards what the
      // (possibly corked) socket still holds, and the test wants exactly N chunks, then death.
      if (!(await flushed(response))) return;
      options.onDestroy();
      response.destroy();
      return;
    }
    if (index === control.errorEventAfterChunks) {
      if (await write(options.errorEvent, 0)) response.end();
      return;
    }
    if (index === control.hangAfterChunks) {
      await whenClosed(response);
      return;
    }
    if (index >= plan.count) break;
    if (intervalMs > 0 && !(await pause(response, intervalMs))) return;
    if (!(await write(plan.chunk(index), 1))) return;
  }
  if (plan.tail !== "" && !(await write(plan.tail, 0))) return;
  response.end();
}
