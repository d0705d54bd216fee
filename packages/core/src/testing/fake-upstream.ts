/**
 * A fake OpenAI-compatible upstream on a real loopback socket, for every test and benchmark of the
 * gateway: it speaks each server family's documented wire shape (see fake-upstream-profiles.ts),
 * counts tokens by a rule tests can recompute (fake-upstream-content.ts), records what it received,
 * and fails on request through the `fake` control (a body field, or the `x-fake` header).
 *
 * node:http only, and quiet: no logging, no per-chunk JSON work, no timers unless a request asks
 * for pacing, so the benchmark can use it as the "upstream direct" floor.
 */
import { createServer } from "node:http";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { fileURLToPath } from "node:url";
import { existsSync } from "node:fs";
import { renderChatCompletionBody, renderCompletionBody, embeddingItems, renderEmbeddingsBody } from "./fake-upstream-bodies.js";
import { fakePromptTokens } from "./fake-upstream-content.js";
import {
  errorForStatus,
  modelRow,
  profileSpec,
  renderErrorBody,
  renderModels,
  renderUnauthorized,
} from "./fake-upstream-profiles.js";
import type { ErrorSpec, FakeModel, FakeUpstreamProfile } from "./fake-upstream-profiles.js";
import {
  loadReplay,
  pause,
  planChatStream,
  planCompletionStream,
  splitReplay,
  isPlainStream,
  streamErrorEvent,
  toolCallTokens,
  whenClosed,
  writeStream,
} from "./fake-upstream-streams.js";
import type { StreamPlan } from "./fake-upstream-streams.js";
import { createRequestRecorder } from "./fake-upstream-recorder.js";
import type { MutableRecord, RecordedRequest } from "./fake-upstream-recorder.js";
import {
  chatParameters,
  completionParameters,
  embeddingParameters,
  parseFakeControl,
  tgiTypeRejection,
  unknownParameter,
} from "./fake-upstream-requests.js";
import type { FakeControl } from "./fake-upstream-requests.js";

export {
  encodeEmbeddingBase64,
  fakeEmbedding,
  fakePromptTokens,
  fakeReplyText,
  fakeReplyWord,
  fakeToolCalls,
} from "./fake-upstream-content.js";
export type { FakeToolCall } from "./fake-upstream-content.js";
export { fakeUpstreamProfiles } from "./fake-upstream-profiles.js";
export type { FakeModel, FakeUpstreamProfile } from "./fake-upstream-profiles.js";
export type { FakeControl } from "./fake-upstream-requests.js";
export type { FakeRequestOutcome, RecordedRequest } from "./fake-upstream-recorder.js";

export interface FakeUpstreamOptions {
  /** Which server family to imitate. Default "openai". */
  profile?: FakeUpstreamProfile;
  /** When set, every request must carry this key, else 401 in the profile's shape. */
  apiKey?: string;
  /** Where the key is read: `authorization: Bearer <key>` (default) or Azure's `api-key: <key>`. */
  apiKeyHeader?: "authorization" | "api-key";
  /** What `GET /v1/models` lists. Default ["fake-model"]. TGI reports the first as its model. */
  models?: ReadonlyArray<string | FakeModel>;
  /** Embedding length when the request sends no `dimensions`. Default 16. */
  embeddingDimensions?: number;
  /** Record requests (default true). The benchmark turns it off so memory stays flat. */
  record?: boolean;
  /** Where `fake.replay` finds captures. Default: core's src/testing/__fixtures__/sse/. */
  replayDirectory?: string;
}

export interface FakeUpstream {
  /** Base URL, `http://127.0.0.1:<port>`. */
  readonly url: string;
  /** `${url}/v1/chat/completions`. */
  readonly chatCompletionsUrl: string;
  readonly profile: FakeUpstreamProfile;
  /** Every request since the last reset(), in arrival order. The array is live, not a copy. */
  readonly requests: readonly RecordedRequest[];
  /**
   * Resolves with `abortedAt` of request `requestIndex` once the client has gone away, waiting
   * for the request to arrive if needed. Rejects when it finished without an abort, or after
   * `timeoutMs` (default 1000).
   */
  waitForAbort(requestIndex: number, timeoutMs?: number): Promise<number>;
  /** Resolves with request `requestIndex` once it has arrived; rejects after `timeoutMs` (default 1000). */
  waitForRequest(requestIndex: number, timeoutMs?: number): Promise<RecordedRequest>;
  /** Replaces the model list. */
  setModels(models: ReadonlyArray<string | FakeModel>): void;
  /**
   * Lets every request held by `fake.gate: name` go on, and every later one pass at once, until
   * reset(). A held request whose client goes away is dropped.
   */
  openGate(name: string): void;
  /** Clears recordings, `failTimes` counters, id counters and opened gates. */
  reset(): void;
  /** Stops listening and destroys every open socket, hanging streams included. */
  close(): Promise<void>;
}

interface Exchange {
  request: IncomingMessage;
  response: ServerResponse;
  record: MutableRecord | null;
}

function defaultReplayDirectory(): string {
  // From src/testing/ the captures sit beside this file; from dist/testing/ (built bundle) they
  // are still read from the package's src/, which the workspace has.
  const beside = fileURLToPath(new URL("./__fixtures__/sse/", import.meta.url));
  if (existsSync(beside)) return beside;
  return fileURLToPath(new URL("../../src/testing/__fixtures__/sse/", import.meta.url));
}

function toModel(model: string | FakeModel): FakeModel {
  return typeof model === "string" ? { id: model } : model;
}

function pathOf(url: string): string {
  const query = url.indexOf("?");
  return query === -1 ? url : url.slice(0, query);
}

function readBody(request: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = "";
    request.setEncoding("utf8");
    request.on("data", (chunk: string) => {
      text += chunk;
    });
    request.on("end", () => resolve(text));
    request.on("error", reject);
  });
}

function positiveInteger(value: unknown): number | undefined {
  return typeof value === "number" && Number.isInteger(value) && value > 0 ? value : undefined;
}

/** Starts a fake upstream on 127.0.0.1, on a free port. */
export async function startFakeUpstream(options: FakeUpstreamOptions = {}): Promise<FakeUpstream> {
  const profile = options.profile ?? "openai";
  const spec = profileSpec(profile);
  const recording = options.record ?? true;
  const replayDirectory = options.replayDirectory ?? defaultReplayDirectory();
  const embeddingDimensions = options.embeddingDimensions ?? 16;
  const apiKeyHeader = options.apiKeyHeader ?? "authorization";
  const expectedAuthorization = options.apiKey === undefined ? undefined : `Bearer ${options.apiKey}`;
  let models = (options.models ?? ["fake-model"]).map(toModel);
  let modelsBody = renderModels(spec, models);

  const recorder = createRequestRecorder();
  const failureCounts = new Map<string, number>();
  const openGates = new Set<string>();
  const gateWaiters = new Map<string, Set<() => void>>();
  const sockets = new Set<Socket>();
  let responseCounter = 0;

  function markDestroyed(exchange: Exchange): void {
    if (exchange.record !== null) exchange.record.outcome = "server-destroyed";
  }

  function setStatus(exchange: Exchange, status: number): void {
    if (exchange.record !== null) exchange.record.status = status;
  }

  function sendBody(exchange: Exchange, status: number, body: string, headers: Readonly<Record<string, string>>): void {
    const { response } = exchange;
    setStatus(exchange, status);
    response.setHeader("content-length", Buffer.byteLength(body));
    response.writeHead(status, headers);
    response.end(body);
  }

  function sendError(exchange: Exchange, error: ErrorSpec): void {
    sendBody(exchange, error.status, renderErrorBody(spec.errorStyle, error), spec.jsonHeaders);
  }

  /** TGI's axum rejections: plain text, 400 for bad JSON and 422 for JSON of the wrong types. */
  function sendPlainText(exchange: Exchange, status: number, text: string): void {
    sendBody(exchange, status, text, { "content-type": "text/plain; charset=utf-8" });
  }

  function openAiError(status: number, message: string, param: string | null, code: string | null): ErrorSpec {
    return { status, message, type: "invalid_request_error", param, code };
  }

  function checkApiKey(exchange: Exchange): boolean {
    if (options.apiKey === undefined) return true;
    const sent = exchange.request.headers[apiKeyHeader];
    const matches = apiKeyHeader === "authorization" ? sent === expectedAuthorization : sent === options.apiKey;
    if (matches) return true;
    sendBody(exchange, 401, renderUnauthorized(spec, sent !== undefined), spec.jsonHeaders);
    return false;
  }

  /** Resolves once gate `name` is open (true), or the response has closed first (false). */
  function passGate(response: ServerResponse, name: string): Promise<boolean> {
    if (openGates.has(name)) return Promise.resolve(!response.destroyed);
    return new Promise((resolve) => {
      let waiters = gateWaiters.get(name);
      if (waiters === undefined) {
        waiters = new Set();
        gateWaiters.set(name, waiters);
      }
      const done = (): void => {
        gateWaiters.get(name)?.delete(done);
        response.off("close", done);
        resolve(!response.destroyed);
      };
      waiters.add(done);
      response.once("close", done);
    });
  }

  /**
   * The steps every endpoint shares after parsing: the first-byte delay, the gate, then the
   * scripted failures (`status` / `failTimes`), then a non-stream `failAfterChunks` /
   * `hangAfterChunks`. Returns false when the request has been answered (or dropped) here.
   */
  async function applyControl(exchange: Exchange, control: FakeControl, stream: boolean): Promise<boolean> {
    const { response } = exchange;
    if (control.firstByteDelayMs !== undefined && control.firstByteDelayMs > 0) {
      if (!(await pause(response, control.firstByteDelayMs))) return false;
    }
    if (control.gate !== undefined && !(await passGate(response, control.gate))) return false;
    if (control.status !== undefined || control.failTimes !== undefined) {
      let fail = true;
      if (control.failTimes !== undefined) {
        const key = control.key ?? "";
        const seen = (failureCounts.get(key) ?? 0) + 1;
        failureCounts.set(key, seen);
        fail = seen <= control.failTimes;
      }
      if (fail) {
        const status = control.status ?? 500;
        if (control.retryAfterMs !== undefined) response.setHeader("retry-after-ms", String(control.retryAfterMs));
        if (control.retryAfter !== undefined) response.setHeader("retry-after", String(control.retryAfter));
        if (control.errorBody !== undefined) {
          sendBody(exchange, status, JSON.stringify(control.errorBody), spec.jsonHeaders);
        } else {
          sendError(exchange, errorForStatus(status));
        }
        return false;
      }
    }
    if (!stream && control.failAfterChunks !== undefined) {
      markDestroyed(exchange);
      response.destroy();
      return false;
    }
    if (!stream && control.hangAfterChunks !== undefined) {
      await whenClosed(response);
      return false;
    }
    return true;
  }

  async function sendStream(exchange: Exchange, plan: StreamPlan, control: FakeControl): Promise<void> {
    const { response, record } = exchange;
    setStatus(exchange, 200);
    response.writeHead(200, spec.streamHeaders);
    // Without pacing the stream goes out in one write anyway; with it, push the headers now so the
    // client sees the response start before the first chunk.
    if (!isPlainStream(control)) response.flushHeaders();
    await writeStream({
      response,
      plan,
      control,
      errorEvent: streamErrorEvent(spec),
      onDestroy: () => markDestroyed(exchange),
      ...(record === null
        ? {}
        : {
            onWrite: (bytes: number, chunks: number) => {
              record.bytesWritten += bytes;
              record.chunksWritten += chunks;
            },
          }),
    });
  }

  async function replay(exchange: Exchange, control: FakeControl, name: string): Promise<void> {
    const bytes = loadReplay(replayDirectory, name);
    if (bytes === null) {
      sendError(exchange, openAiError(400, `No capture named '${name}' in ${replayDirectory}.`, "fake.replay", null));
      return;
    }
    const pieces = splitReplay(bytes, control.replayChunkBytes, !isPlainStream(control));
    await sendStream(exchange, { head: "", count: pieces.length, chunk: (index) => pieces[index]!, tail: "" }, control);
  }

  /** Chunks to send and the finish reason: `fake.chunks` (default 8) capped by max_tokens. */
  function contentPlan(body: Record<string, unknown>, control: FakeControl): { count: number; finishReason: string } {
    const requested = control.chunks ?? 8;
    const cap = positiveInteger(body.max_completion_tokens) ?? positiveInteger(body.max_tokens);
    if (cap !== undefined && cap < requested) return { count: cap, finishReason: "length" };
    return { count: requested, finishReason: spec.stopReason };
  }

  function includeUsage(body: Record<string, unknown>): boolean {
    const streamOptions = body.stream_options;
    if (typeof streamOptions !== "object" || streamOptions === null) return false;
    const value = (streamOptions as { include_usage?: unknown }).include_usage;
    return value === true || (value === undefined && spec.includeUsageDefault);
  }

  function responseModel(body: Record<string, unknown>): string {
    // TGI serves one model and reports its own id whatever the request named.
    if (spec.errorStyle === "tgi") return models[0]?.id ?? "tgi";
    return typeof body.model === "string" ? body.model : "fake-model";
  }

  /** Checks shared by chat and completions; false when it answered with an error. */
  function validateGeneration(exchange: Exchange, body: Record<string, unknown>, promptField: "messages" | "prompt"): boolean {
    if (spec.plainTextRejections) {
      const rejection = tgiTypeRejection(body, promptField);
      if (rejection !== null) {
        sendPlainText(exchange, 422, `Failed to deserialize the JSON body into the target type: ${rejection}`);
        return false;
      }
    }
    if (promptField === "messages" && !Array.isArray(body.messages)) {
      sendError(exchange, openAiError(400, "Missing required parameter: 'messages'.", "messages", "missing_required_parameter"));
      return false;
    }
    if (spec.rejectsStreamOptionsWithoutStream && body.stream_options !== undefined && body.stream_options !== null && body.stream !== true) {
      // vLLM's pydantic validator names no param; OpenAI names the field.
      const error =
        spec.errorStyle === "vllm"
          ? openAiError(400, "Stream options can only be defined when `stream=True`.", null, null)
          : openAiError(400, "The 'stream_options' parameter is only allowed when 'stream' is enabled.", "stream_options", null);
      sendError(exchange, error);
      return false;
    }
    return true;
  }

  async function chatCompletions(exchange: Exchange, body: Record<string, unknown>, control: FakeControl): Promise<void> {
    if (!validateGeneration(exchange, body, "messages")) return;
    const stream = body.stream === true && control.ignoreStream !== true;
    if (!(await applyControl(exchange, control, stream || control.replay !== undefined))) return;
    if (control.replay !== undefined) return replay(exchange, control, control.replay);
    const counter = ++responseCounter;
    const promptTokens = fakePromptTokens(body);
    const toolCalls = control.toolCalls === true;
    const { count, finishReason } = toolCalls ? { count: toolCallTokens(spec), finishReason: "tool_calls" } : contentPlan(body, control);
    const id = spec.chatId(counter);
    const created = Math.floor(Date.now() / 1000);
    const model = responseModel(body);
    if (stream) {
      const plan = planChatStream({
        spec,
        id,
        created,
        modelJson: JSON.stringify(model),
        promptTokens,
        contentCount: count,
        finishReason,
        includeUsage: includeUsage(body),
        toolCalls,
        counter,
      });
      return sendStream(exchange, plan, control);
    }
    const responseBody = renderChatCompletionBody({
      spec,
      id,
      created,
      model,
      promptTokens,
      completionTokens: count,
      finishReason,
      toolCalls,
      counter,
    });
    sendBody(exchange, 200, responseBody, spec.jsonHeaders);
  }

  async function completions(exchange: Exchange, body: Record<string, unknown>, control: FakeControl): Promise<void> {
    if (!validateGeneration(exchange, body, "prompt")) return;
    const stream = body.stream === true && control.ignoreStream !== true;
    if (!(await applyControl(exchange, control, stream || control.replay !== undefined))) return;
    if (control.replay !== undefined) return replay(exchange, control, control.replay);
    const counter = ++responseCounter;
    const promptTokens = fakePromptTokens({ prompt: body.prompt });
    const { count, finishReason } = contentPlan(body, control);
    const id = spec.completionId(counter);
    const created = Math.floor(Date.now() / 1000);
    const model = responseModel(body);
    if (stream) {
      const plan = planCompletionStream({
        spec,
        id,
        created,
        modelJson: JSON.stringify(model),
        promptTokens,
        contentCount: count,
        finishReason,
        includeUsage: includeUsage(body),
      });
      return sendStream(exchange, plan, control);
    }
    const responseBody = renderCompletionBody({ spec, id, created, model, promptTokens, completionTokens: count, finishReason });
    sendBody(exchange, 200, responseBody, spec.jsonHeaders);
  }

  async function embeddings(exchange: Exchange, body: Record<string, unknown>, control: FakeControl): Promise<void> {
    const items = embeddingItems(body.input);
    if (items === null) {
      sendError(exchange, openAiError(400, "'input' must be a string, an array of strings, or an array of token arrays.", "input", null));
      return;
    }
    const format = body.encoding_format ?? "float";
    if (format !== "float" && format !== "base64") {
      const message = `Invalid value for 'encoding_format': '${String(format)}'. Supported values are: 'float' and 'base64'.`;
      sendError(exchange, openAiError(400, message, "encoding_format", "invalid_value"));
      return;
    }
    if (!(await applyControl(exchange, control, false))) return;
    const responseBody = renderEmbeddingsBody({
      input: body.input,
      items,
      model: typeof body.model === "string" ? body.model : "fake-model",
      format,
      dimensions: positiveInteger(body.dimensions) ?? embeddingDimensions,
    });
    sendBody(exchange, 200, responseBody, spec.jsonHeaders);
  }

  async function listModels(exchange: Exchange, path: string, control: FakeControl): Promise<void> {
    if (!(await applyControl(exchange, control, false))) return;
    if (path === "/v1/models") {
      sendBody(exchange, 200, modelsBody, spec.jsonHeaders);
      return;
    }
    const id = decodeURIComponent(path.slice("/v1/models/".length));
    const model = models.find((candidate) => candidate.id === id);
    if (model === undefined) {
      sendError(exchange, openAiError(404, `The model '${id}' does not exist`, "model", "model_not_found"));
      return;
    }
    sendBody(exchange, 200, JSON.stringify(modelRow(spec, model)), spec.jsonHeaders);
  }

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const receivedAt = Date.now();
    const url = request.url ?? "/";
    const path = pathOf(url);
    const method = request.method ?? "GET";
    const rawBody = method === "POST" ? await readBody(request) : "";
    const record = recording ? recorder.start({ request, response, method, path, url, rawBody, receivedAt }) : null;
    const exchange: Exchange = { request, response, record };

    const route =
      method === "POST" && path === "/v1/chat/completions"
        ? "chat"
        : method === "POST" && path === "/v1/completions"
          ? "completions"
          : method === "POST" && path === "/v1/embeddings"
            ? "embeddings"
            : method === "GET" && (path === "/v1/models" || path.startsWith("/v1/models/"))
              ? "models"
              : null;
    if (route === null) {
      // OpenAI's answer to an unknown route, in every profile: tests about routing want one shape.
      sendBody(
        exchange,
        404,
        renderErrorBody("openai", openAiError(404, `Invalid URL (${method} ${path})`, null, null)),
        openAiJsonHeadersForRoutes,
      );
      return;
    }
    if (!checkApiKey(exchange)) return;

    let body: Record<string, unknown> = {};
    if (method === "POST") {
      let parsed: unknown;
      try {
        parsed = JSON.parse(rawBody);
      } catch (error) {
        if (spec.plainTextRejections) {
          sendPlainText(exchange, 400, `Failed to parse the request body as JSON: ${(error as Error).message}`);
        } else {
          sendError(
            exchange,
            openAiError(400, "We could not parse the JSON body of your request. The OpenAI API expects a JSON payload.", null, null),
          );
        }
        return;
      }
      if (record !== null) record.body = parsed;
      if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
        sendError(exchange, openAiError(400, "The request body must be a JSON object.", null, null));
        return;
      }
      body = parsed as Record<string, unknown>;
      if (record !== null) record.stream = body.stream === true;
      if (spec.strict) {
        const known = route === "chat" ? chatParameters : route === "completions" ? completionParameters : embeddingParameters;
        const unknown = unknownParameter(body, known);
        if (unknown !== null) {
          sendError(exchange, openAiError(400, `Unknown parameter: '${unknown}'.`, unknown, "unknown_parameter"));
          return;
        }
      }
    }

    const parsedControl = parseFakeControl(request.headers["x-fake"], spec.strict ? undefined : body.fake);
    if (typeof parsedControl === "string") {
      sendError(exchange, openAiError(400, parsedControl, "fake", null));
      return;
    }
    if (record !== null) record.control = parsedControl;
    const control = parsedControl ?? noControl;

    if (route === "chat") return chatCompletions(exchange, body, control);
    if (route === "completions") return completions(exchange, body, control);
    if (route === "embeddings") return embeddings(exchange, body, control);
    return listModels(exchange, path, control);
  }

  const server = createServer({ noDelay: true, keepAlive: true }, (request, response) => {
    handle(request, response).catch(() => {
      // A handler bug or a socket torn down mid-read: never leave the client waiting.
      if (!response.headersSent && !response.destroyed) {
        response.writeHead(500, { "content-type": "application/json" });
        response.end(renderErrorBody("openai", errorForStatus(500)));
      } else {
        response.destroy();
      }
    });
  });
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });
  server.on("clientError", (_error, socket) => socket.destroy());

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const url = `http://127.0.0.1:${port}`;

  return {
    url,
    chatCompletionsUrl: `${url}/v1/chat/completions`,
    profile,
    requests: recorder.requests,
    waitForAbort: (requestIndex, timeoutMs = 1000) => recorder.waitForAbort(requestIndex, timeoutMs),
    waitForRequest: (requestIndex, timeoutMs = 1000) => recorder.waitForRequest(requestIndex, timeoutMs),
    setModels(next) {
      models = next.map(toModel);
      modelsBody = renderModels(spec, models);
    },
    openGate(name) {
      openGates.add(name);
      for (const release of [...(gateWaiters.get(name) ?? [])]) release();
    },
    reset() {
      recorder.reset();
      failureCounts.clear();
      openGates.clear();
      responseCounter = 0;
    },
    close() {
      recorder.stopRecordingAborts();
      for (const socket of sockets) socket.destroy();
      return new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve())));
    },
  };
}

const noControl: FakeControl = {};
const openAiJsonHeadersForRoutes = { "content-type": "application/json" };
