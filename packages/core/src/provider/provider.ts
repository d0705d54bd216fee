import type { ProviderRecord, ProviderStatus } from "./provider-record.js";

/** Token counts for one request, as the upstream reported them or as Sluice counted them. */
export interface TokenUsage {
  inputTokens: number;
  outputTokens: number;
  /** Input tokens served from the upstream's prompt cache, when it says so. */
  cachedInputTokens?: number;
  /** Where the numbers came from: the upstream's `usage`, or Sluice's own tokenizer. */
  source: "upstream" | "counted";
}

/** A model one provider serves, by its upstream name (a model id, or an Azure deployment name). */
export interface ProviderModel {
  id: string;
  /** Unix seconds, when the upstream says. */
  created?: number;
  ownedBy?: string;
  /** What the model serves; absent means unknown, and the gateway lets the upstream decide. */
  capabilities?: { chat?: boolean; embeddings?: boolean; completions?: boolean };
}

/**
 * An OpenAI request body. The gateway reads the fields it needs (`model`, `stream`,
 * `stream_options`, `max_tokens`, ...) and passes every other field through unchanged, in both
 * directions: tools, `response_format`, logprobs and vendor extensions reach the upstream as sent.
 */
export type OpenAIRequestBody = Record<string, unknown> & { model: string };

export interface ProviderCall {
  /** The client's body with `model` already rewritten to the upstream's model or deployment. */
  body: OpenAIRequestBody;
  /** Aborts the upstream request: the client went away, or a timeout fired. */
  signal: AbortSignal;
  /** The gateway's request id, for upstream correlation headers. */
  requestId: string;
  /**
   * The most output tokens the gateway reserved for, when the body names no cap of its own
   * (`max_tokens`, `max_completion_tokens`): the adapter sends it in the field its upstream knows
   * (`withOutputCap`), so what the request can cost stays within its reservation. Absent when the
   * body has a cap, or when the model has no price and nothing is reserved.
   */
  outputCap?: number;
}

/** A complete (non-streaming) upstream answer. */
export interface ProviderResponse {
  status: number;
  /** Upstream headers worth relaying (request ids, rate-limit headers), lower-case names. */
  headers: Record<string, string>;
  /** The parsed JSON body, unchanged but for what the adapter must normalize. */
  body: Record<string, unknown>;
  /** The usage the upstream reported, or null when it reported none. */
  usage: TokenUsage | null;
  /**
   * The body's text exactly as the upstream sent it, when `body` is its parse, unchanged. The
   * gateway then answers with this text, the model renamed in place, instead of serializing
   * `body` again (a saving that grows with the answer: an embeddings list is mostly numbers). Leave
   * it out when the adapter changed anything in `body`.
   */
  text?: string;
}

/**
 * One server-sent event of a chat-completion stream.
 *
 * `data` is the upstream's payload text as it arrived. The gateway itself forwards a batch's text
 * and never looks at single events; these are for tests and for code that wants the payloads.
 */
export interface ProviderStreamEvent {
  readonly data: string;
  /**
   * Present on an event that carries usage. Some servers repeat cumulative usage on every chunk
   * (vLLM's continuous usage stats): the last one seen is the request's.
   */
  readonly usage?: TokenUsage;
  /**
   * True for a usage-only chunk (`choices: []` with usage, OpenAI's `include_usage` trailer),
   * which the gateway removes when the client did not ask for usage.
   */
  readonly usageOnly?: boolean;
}

/**
 * The events that one read of an upstream stream completed (never none, never `[DONE]`).
 *
 * The gateway forwards `text` whole and reads only `usage` and `outputDeltaEvents`, so a batch
 * costs it a few string operations however many events it holds: no event is parsed, sliced or
 * re-framed on the way through (STYLE.md §3). `sseBodyBatches` and `readProviderStream` build
 * batches; `events` decodes them for whoever wants the payloads one by one.
 */
export interface ProviderStreamBatch {
  /**
   * The events as the gateway writes them, before it renames the model: each is
   * `data: <payload>\n\n` (a payload of several lines gets one `data: ` line per line). Usually
   * the upstream's own text, unchanged.
   */
  readonly text: string;
  /** The events one by one, decoded from `text` on first access. */
  readonly events: readonly ProviderStreamEvent[];
  /**
   * The last usage an event of the batch reported, or null. Servers that repeat cumulative usage
   * on every chunk (vLLM's continuous usage stats) are served by keeping the last one seen.
   */
  readonly usage: TokenUsage | null;
  /**
   * Where the usage-only events are in `text` (OpenAI's `include_usage` trailer, `choices: []`),
   * as `[start, end)` offsets in pairs, so the gateway can cut them out when the client did not
   * ask for usage; null when there are none.
   */
  readonly usageOnlySpans: readonly number[] | null;
  /**
   * Events with a non-empty content, refusal, reasoning or tool-call-arguments delta. Counted only
   * in a batch that reports no usage (0 otherwise): reported usage makes counting moot. The
   * gateway's fallback estimate (about one token each) when a batch carries no `outputText`.
   */
  readonly outputDeltaEvents: number;
  /**
   * The generated text of those events (content, refusal, reasoning, tool-call arguments), which
   * the gateway counts with its tokenizer when no usage comes. Like `outputDeltaEvents`, only in
   * a batch that reports no usage (""). Optional: without it the gateway counts events.
   */
  readonly outputText?: string;
  /**
   * True when the stream ended with this batch (`[DONE]`, or the end of the body): the iteration
   * yields nothing more, so the gateway finishes the client's stream without waiting on it.
   * Optional: a stream that cannot tell leaves it out, and its iteration simply ends.
   */
  readonly ended?: boolean;
}

/**
 * A started chat-completion stream.
 *
 * The upstream has answered 2xx by the time this exists: an error before the first event rejects
 * `streamChatCompletion` with a GatewayError instead. Iterating `batches` yields the events in
 * arrival order, in batches: the events that one read of the upstream completed. Batches rather
 * than single events because an upstream usually delivers several events per read, and each
 * async step through the gateway, or each event looked at on its own, costs more than the work of
 * forwarding it. A failure after the first event makes the iteration throw a GatewayError, which
 * the gateway turns into an SSE error event. Leaving the iteration (its `return()`), or aborting
 * the call's signal, cancels the upstream request.
 *
 * `sseBodyBatches` (a Node Readable body) and `readProviderStream` (any async iterable of bytes)
 * build this from an SSE body.
 */
export interface ProviderStream {
  status: number;
  headers: Record<string, string>;
  batches: AsyncIterable<ProviderStreamBatch>;
}

export interface ProviderHealth {
  status: ProviderStatus;
  /** Why, for an unhealthy status; null when healthy. */
  reason: string | null;
  checkedAt: number;
}

/**
 * One upstream target that serves one model: an endpoint, or an Azure deployment. A provider may
 * have several for a model (fallback endpoints, deployments of one model in several regions); the
 * gateway tries them in order, retrying and falling back only before the first byte has reached
 * the client (see the router's retry wrapper).
 *
 * Every call takes an AbortSignal and throws GatewayError: 502 for an upstream failure, 503 when
 * the target cannot serve (stopped, not provisioned), 504 on timeout, 429 for the upstream's rate
 * limit (with its `retry-after-ms` / `retry-after` in `headers`), and the upstream's own 4xx,
 * normalized to OpenAI's shape, for a request the upstream refused.
 */
export interface Deployment {
  /** Stable, for events and diagnostics (`prv_x/eastus2/gpt-4o`). */
  readonly id: string;
  /** The name the upstream knows the model by; the gateway writes it into `body.model`. */
  readonly model: string;

  chatCompletion(call: ProviderCall): Promise<ProviderResponse>;

  streamChatCompletion(call: ProviderCall): Promise<ProviderStream>;

  embeddings(call: ProviderCall): Promise<ProviderResponse>;

  /** Legacy `/completions`, for upstreams that serve it; absent when the adapter does not. */
  completions?(call: ProviderCall): Promise<ProviderResponse>;

  /** Legacy `/completions` streamed, with the same event contract as `streamChatCompletion`. */
  streamCompletions?(call: ProviderCall): Promise<ProviderStream>;
}

/**
 * A model backend, bound to one provider record. Implementations (adapters) translate to their
 * upstream's wire format and normalize its quirks; the gateway never branches on the kind.
 */
export interface Provider {
  readonly record: ProviderRecord;

  /** The models this provider serves now. Adapters cache discovery; this may answer from cache. */
  listModels(options?: { signal?: AbortSignal }): Promise<ProviderModel[]>;

  /**
   * The deployments that serve `model`, in the order to try them; empty when the provider does
   * not serve it. Synchronous and cheap: it runs on every request.
   */
  deployments(model: string): Deployment[];

  /** Checks the upstream and reports; never throws. */
  health(options?: { signal?: AbortSignal }): Promise<ProviderHealth>;

  /** Releases connection pools and timers. Idempotent. */
  close?(): Promise<void>;
}

/**
 * Turns provider records of one kind into live Providers. The gateway keeps one adapter per kind
 * and asks it for a Provider when a record of that kind is used.
 */
export interface ProviderAdapter {
  readonly kind: ProviderRecord["kind"];
  /**
   * Checks a record's settings and secrets before they are stored (a create or an update through
   * the management API) and returns the settings to store, normalized. Throws a 400 GatewayError
   * naming the field at fault (`settings.endpoint`). Absent: any JSON object is accepted.
   */
  validate?(input: { settings: unknown; secrets: Record<string, string | null> }): Record<string, unknown>;
  create(input: { record: ProviderRecord; secrets: Record<string, string> }): Provider;
  /**
   * Called after a record of this kind was created through the management API (once stored).
   * Starts whatever the provider needs (an Azure deployment, say) in the background and returns
   * at once: it must not throw into the creation. The outcome lands in the record's status
   * through the catalog: `provisioning`, then `provisioned` or `failed` with the reason.
   * Absent: nothing is provisioned and the record keeps the status it was stored with.
   */
  provision?(input: { record: ProviderRecord }): void;
  /**
   * Called before a record of this kind is deleted through the management API. Tears down what
   * provisioning made, and may delete the record itself; idempotent. If it throws (a 502 or 503
   * GatewayError), the delete is refused with that error and the record stays, so nothing is
   * orphaned upstream. Absent: the record is simply deleted.
   */
  deprovision?(input: { record: ProviderRecord }): Promise<void>;
}
