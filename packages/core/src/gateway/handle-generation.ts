import { GatewayError } from "../errors/gateway-error.js";
import type { OpenAIRequestBody, ProviderCall, ProviderResponse, ProviderStream, ProviderStreamBatch } from "../provider/provider.js";
import { countMessageTokens, countTextTokens } from "../streaming/count-tokens.js";
import { answerText } from "./answer-text.js";
import type { Caller } from "./authenticate.js";
import type { GatewayContext } from "./gateway-context.js";
import { doneEvent } from "./gateway-request.js";
import type { GatewayReply, StreamReply } from "./gateway-request.js";
import type { RequestMeter } from "./request-meter.js";
import { modelRewriter } from "./model-rewriter.js";
import { reserveBudget } from "./reserve-budget.js";
import type { ChatCompletionRequest, CompletionRequest } from "./request-schemas.js";
import type { ResolvedModel } from "./resolve-model.js";
import { RequestControl } from "./request-control.js";
import { attemptDeployments } from "./upstream-attempt.js";
import type { Attempt } from "./upstream-attempt.js";
import { countInputParts, worstCaseCost } from "./worst-case-cost.js";

export type GenerationOperation = "chat.completions" | "completions";

interface Generation {
  context: GatewayContext;
  /** The client's disconnect; the request itself (with its raw body) is not kept for the stream's life. */
  signal: AbortSignal;
  requestId: string;
  operation: GenerationOperation;
  body: ChatCompletionRequest | CompletionRequest;
  bodyBytes: number;
  caller: Caller;
  resolved: ResolvedModel;
  /** Called once the reply is finished (after the stream, for streams), with its outcome. */
  onEnd: (end: { status: number; errorCode: string | null; outcome: string }) => void;
}

/**
 * Chat completions and legacy completions, streaming or not: reserve the worst case, call the
 * upstream with timeout, retry and fallback before the first byte, relay, meter, settle.
 */
export async function handleGeneration(generation: Generation): Promise<GatewayReply> {
  const { context, resolved, body } = generation;
  const parsedModel = resolved.deployments[0]!.model;
  const price = context.prices?.priceFor({ providerId: resolved.record.id, model: parsedModel }) ?? null;
  const maxOutput =
    generation.operation === "chat.completions"
      ? ((body as ChatCompletionRequest).max_completion_tokens ?? body.max_tokens)
      : body.max_tokens;
  const amount = worstCaseCost({
    price,
    bodyBytes: generation.bodyBytes,
    maxOutputTokens: maxOutput,
    defaultMaxOutputTokens: context.defaultMaxOutputTokens,
    choices: Math.max(body.n ?? 1, bestOf(body)),
    parts: generation.operation === "chat.completions" ? countInputParts((body as ChatCompletionRequest).messages) : undefined,
    fileTokenAllowance: context.fileTokenAllowance,
  });
  const meter = await reserveBudget({
    context,
    requestId: generation.requestId,
    caller: generation.caller,
    resolved,
    price,
    amount,
  });
  const countInput = () => countInput_(generation);
  // Without a cap of its own, the request is held to the one reserved for: the worst case is a
  // bound only if the upstream stops there. A model without a price reserves nothing to protect.
  const outputCap = price !== null && (maxOutput === undefined || maxOutput === null) ? context.defaultMaxOutputTokens : undefined;

  try {
    if (body.stream === true) return await streamGeneration(generation, meter, countInput, outputCap);
    return await completeGeneration(generation, meter, countInput, outputCap);
  } catch (error) {
    await meter.settle(countInput);
    throw error;
  }
}

/** Legacy completions generate `best_of` answers upstream and return `n` of them: each is paid for. */
function bestOf(body: ChatCompletionRequest | CompletionRequest): number {
  const value = (body as Record<string, unknown>).best_of;
  return typeof value === "number" && Number.isInteger(value) && value > 1 ? value : 1;
}

function countInput_(generation: Generation): Promise<number> {
  const body = generation.body;
  if ("messages" in body) return countMessageTokens(body.messages);
  const prompt = (body as CompletionRequest).prompt;
  return countTextTokens(typeof prompt === "string" ? prompt : JSON.stringify(prompt));
}

/** Calls one deployment with the body `bodyFor` makes for its model: a new object per call. */
function callDeployment(generation: Generation, bodyFor: (model: string) => OpenAIRequestBody, stream: boolean, outputCap: number | undefined) {
  return (deployment: Parameters<Attempt<unknown>>[0], signal: AbortSignal) => {
    const call: ProviderCall = { body: bodyFor(deployment.model), signal, requestId: generation.requestId };
    if (outputCap !== undefined) call.outputCap = outputCap;
    if (generation.operation === "completions") {
      const serve = stream ? deployment.streamCompletions?.bind(deployment) : deployment.completions?.bind(deployment);
      if (!serve) {
        throw new GatewayError(
          "invalid_request",
          `The model \`${generation.resolved.modelId}\` does not serve the legacy completions API${stream ? " with streaming" : ""}.`,
          { param: "model" },
        );
      }
      return serve(call);
    }
    return stream ? deployment.streamChatCompletion(call) : deployment.chatCompletion(call);
  };
}

/** The limits and the off switch of a generation; it keeps only the client's signal, not the request. */
function requestControl(generation: Generation): RequestControl {
  return new RequestControl(generation.signal, generation.context.timeouts);
}

async function completeGeneration(
  generation: Generation,
  meter: RequestMeter,
  countInput: () => Promise<number>,
  outputCap: number | undefined,
): Promise<GatewayReply> {
  const { context, resolved } = generation;
  const bodyFor = (model: string): OpenAIRequestBody => {
    const { stream: _stream, stream_options: _streamOptions, ...upstreamBody } = generation.body;
    upstreamBody.model = model;
    return upstreamBody;
  };
  const control = requestControl(generation);
  try {
    const attempt = callDeployment(generation, bodyFor, false, outputCap) as Attempt<ProviderResponse>;
    // The answer arrives whole, so its first byte is its last: only the total limit bounds it.
    const result = await attemptDeployments(resolved.deployments, attempt, control, context.retry, { firstByteLimit: false }).catch((error: unknown) => {
      throw control.failure(error);
    });
    meter.usage = result.usage ?? {
      inputTokens: await countInput(),
      outputTokens: await countTextTokens(outputText(result.body)),
      source: "counted",
    };
    return {
      kind: "json",
      status: 200,
      headers: { "content-type": "application/json" },
      body: answerText(result, resolved.modelId),
      // The answer goes out while the charge is committed.
      settled: meter.settle(countInput),
    };
  } finally {
    control.dispose();
  }
}

/** The generated text of a non-streamed answer, to count when the upstream reports no usage. */
function outputText(body: Record<string, unknown>): string {
  const choices = Array.isArray(body.choices) ? (body.choices as Array<Record<string, unknown>>) : [];
  let text = "";
  for (const choice of choices) {
    const message = choice.message as Record<string, unknown> | undefined;
    if (typeof message?.content === "string") text += message.content;
    if (Array.isArray(message?.tool_calls)) text += JSON.stringify(message.tool_calls);
    if (typeof choice.text === "string") text += choice.text;
  }
  return text;
}

interface StartedStream {
  stream: ProviderStream;
  iterator: AsyncIterator<ProviderStreamBatch>;
  first: IteratorResult<ProviderStreamBatch>;
  /** The signal of the try that answered: it aborts on the total limit, a disconnect, or a cancel. */
  signal: AbortSignal;
}

/**
 * Calls the deployments until one answers with its first events. Its own function, so that what
 * starting needs (the upstream body copy, the attempt closures) is not kept alive by the relay
 * for as long as the stream runs.
 */
async function startStream(generation: Generation, control: RequestControl, outputCap: number | undefined): Promise<StartedStream> {
  const { context, resolved } = generation;
  // Always ask for usage, so metering does not depend on the client remembering to.
  const bodyFor = (model: string): OpenAIRequestBody => ({
    ...generation.body,
    model,
    stream: true,
    stream_options: { ...generation.body.stream_options, include_usage: true },
  });
  // The first events are read inside the attempt: until they arrive nothing has gone to the
  // client, so a failure up to then may still be retried, fall back, or become a proper status.
  const call = callDeployment(generation, bodyFor, true, outputCap) as Attempt<ProviderStream>;
  const attempt: Attempt<StartedStream> = async (deployment, attemptSignal) => {
    const stream = await call(deployment, attemptSignal);
    const iterator = stream.batches[Symbol.asyncIterator]();
    let first: IteratorResult<ProviderStreamBatch>;
    try {
      first = await iterator.next();
    } catch (error) {
      await iterator.return?.();
      throw error;
    }
    // A body with no event at all (a page that is not an event stream, a server that gave up)
    // is no answer, and must not reach the client as an empty, finished one.
    if (first.done === true) throw new GatewayError("upstream_error", "The upstream ended its event stream without sending any event.");
    return { stream, iterator, first, signal: attemptSignal };
  };
  return attemptDeployments(resolved.deployments, attempt, control, context.retry);
}

async function streamGeneration(
  generation: Generation,
  meter: RequestMeter,
  countInput: () => Promise<number>,
  outputCap: number | undefined,
): Promise<StreamReply> {
  const control = requestControl(generation);
  let started: StartedStream;
  try {
    started = await startStream(generation, control, outputCap);
  } catch (error) {
    control.dispose();
    throw control.failure(error);
  }
  meter.answered = true;
  const relayed: Relay = {
    iterator: started.iterator,
    first: started.first,
    control,
    meter,
    countInput,
    clientWantsUsage: generation.body.stream_options?.include_usage === true,
    chunkObject: generation.operation === "completions" ? "text_completion" : "chat.completion.chunk",
    rewriteModel: modelRewriter(generation.resolved.modelId),
    requestId: generation.requestId,
    modelId: generation.resolved.modelId,
    onEnd: generation.onEnd,
  };
  return {
    kind: "stream",
    status: 200,
    headers: {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache",
      // Keeps nginx-style proxies from buffering the stream (wire-formats §5).
      "x-accel-buffering": "no",
    },
    events: new RelayEvents(relayed),
    signal: started.signal,
  };
}

/**
 * What the relay needs for the life of a stream, and nothing more: a stream may stay open for
 * minutes, and whatever this holds (and a closure would hold its whole scope) is held as long.
 */
interface Relay {
  iterator: AsyncIterator<ProviderStreamBatch>;
  first: IteratorResult<ProviderStreamBatch>;
  control: RequestControl;
  meter: RequestMeter;
  countInput: () => Promise<number>;
  clientWantsUsage: boolean;
  /** The `object` of a chunk the gateway writes itself: legacy completions stream `text_completion`. */
  chunkObject: "chat.completion.chunk" | "text_completion";
  rewriteModel: (data: string) => string;
  requestId: string;
  modelId: string;
  onEnd: Generation["onEnd"];
}

/**
 * A batch as the client gets it: its text with the model renamed, and the usage-only chunk cut out
 * unless the client asked for usage. The text is written as it is, in one piece.
 */
function frameBatch(relay: Relay, batch: ProviderStreamBatch): string {
  // Where the usage-only events are is worked out only if they are to be cut.
  if (relay.clientWantsUsage) return relay.rewriteModel(batch.text);
  const spans = batch.usageOnlySpans;
  return relay.rewriteModel(spans === null ? batch.text : withoutSpans(batch.text, spans));
}

/** `text` without the `[start, end)` spans (in order, in pairs). */
function withoutSpans(text: string, spans: readonly number[]): string {
  let kept = "";
  let from = 0;
  for (let index = 0; index < spans.length; index += 2) {
    kept += text.slice(from, spans[index]);
    from = spans[index + 1]!;
  }
  return kept + text.slice(from);
}

/**
 * The relay's events, finished however the edge lets go of them. `return()` on an async generator
 * that has not started skips its body, `finally` included; an edge that gives up before asking
 * for the first piece (a failed `writeHead`, a client gone at once) must still settle the request.
 */
class RelayEvents implements AsyncGenerator<string, void, undefined> {
  readonly #state: Relay;
  readonly #events: AsyncGenerator<string, void, undefined>;
  #started = false;

  constructor(state: Relay) {
    this.#state = state;
    this.#events = relay(state);
  }

  next(): Promise<IteratorResult<string, void>> {
    this.#started = true;
    return this.#events.next();
  }

  async return(value?: void | PromiseLike<void>): Promise<IteratorResult<string, void>> {
    await this.#finishUnstarted();
    return this.#events.return(value);
  }

  async throw(error?: unknown): Promise<IteratorResult<string, void>> {
    await this.#finishUnstarted();
    return this.#events.throw(error);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.return();
  }

  async #finishUnstarted(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    const state = this.#state;
    await finishRelay(state, { outcome: abandonedOutcome(state.control), errorCode: null, upstreamEnded: state.first.done === true });
  }
}

/** Why a stream that did not deliver all of its events ended, when no error said so. */
function abandonedOutcome(control: RequestControl): string {
  return control.reason === "timeout" ? "timeout" : "client-disconnect";
}

/** Relays the upstream's batches, meters them, ends the stream as OpenAI does, and settles. */
async function* relay(state: Relay): AsyncGenerator<string, void, undefined> {
  const { iterator, first, control, meter } = state;
  control.streaming();
  let outcome = "completed";
  let errorCode: string | null = null;
  // Set once the upstream's events have ended by themselves: nothing then runs upstream that
  // needs cancelling (the adapter releases the body without cutting the connection).
  let upstreamEnded = first.done === true;
  /** The last piece (or an error event) is out: the edge no longer decides how this ends. */
  let answered = false;
  try {
    // The last batch goes out with the stream's end, in one write.
    let last = "";
    if (first.done !== true) {
      let batch = first.value;
      for (;;) {
        meter.observe(batch);
        const text = frameBatch(state, batch);
        if (batch.ended === true) {
          upstreamEnded = true;
          last = text;
          break;
        }
        if (text !== "") {
          // The edge asks for more once the client has taken this in; until then only the total
          // limit runs (a full socket is the client's doing, not a silent upstream).
          control.awaitingClient();
          yield text;
          control.streaming();
        }
        const next = await iterator.next();
        if (next.done === true) {
          upstreamEnded = true;
          break;
        }
        control.progressed();
        batch = next.value;
      }
    }
    if (state.clientWantsUsage && meter.usage === null) last += await usageChunk(meter, state);
    answered = true;
    yield last + doneEvent;
  } catch (thrown) {
    if (control.reason === "client-disconnect") return;
    const error =
      control.reason === "timeout"
        ? new GatewayError("upstream_timeout", "The upstream stopped sending within the time the gateway allows.", { cause: thrown })
        : GatewayError.from(thrown);
    outcome = control.reason === "timeout" ? "timeout" : "upstream-error";
    errorCode = error.code;
    answered = true;
    // After the first byte an error can only travel as an event; the stream then ends without
    // [DONE], so no client mistakes it for a finished answer.
    yield `data: ${JSON.stringify(error.toJSON())}\n\n`;
  } finally {
    // The edge let go before the end: the client went away or stopped reading until the total
    // limit ran out (the edge then drops the connection).
    if (control.reason === "client-disconnect") outcome = "client-disconnect";
    else if (!answered) {
      outcome = abandonedOutcome(control);
      if (outcome === "timeout") errorCode = "upstream_timeout";
    }
    await finishRelay(state, { outcome, errorCode, upstreamEnded });
  }
}

/** Stops what still runs for a stream, settles its budget and reports how it ended. */
async function finishRelay(state: Relay, end: { outcome: string; errorCode: string | null; upstreamEnded: boolean }): Promise<void> {
  const { control, iterator, meter } = state;
  // An abort builds a DOMException with its stack and destroys the already-finished upstream
  // body with it, whose stack is then formatted: about 8% of the gateway's CPU on a short
  // stream in `npm run bench` profiles. Pay it only when something upstream may still run.
  if (!end.upstreamEnded) control.cancel();
  control.dispose();
  await Promise.resolve(iterator.return?.()).catch(() => undefined);
  await meter.settle(state.countInput);
  state.onEnd({ status: 200, errorCode: end.errorCode, outcome: end.outcome });
}

/** The usage chunk a client asked for, when the upstream sent none: from counted tokens. */
async function usageChunk(meter: RequestMeter, state: Relay): Promise<string> {
  const inputTokens = await state.countInput().catch(() => 0);
  meter.usage = { inputTokens, outputTokens: await meter.countedOutput(), source: "counted" };
  const chunk = {
    id: state.requestId,
    object: state.chunkObject,
    created: Math.floor(Date.now() / 1000),
    model: state.modelId,
    choices: [],
    usage: { prompt_tokens: inputTokens, completion_tokens: meter.usage.outputTokens, total_tokens: inputTokens + meter.usage.outputTokens },
  };
  return `data: ${JSON.stringify(chunk)}\n\n`;
}
