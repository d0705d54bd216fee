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
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from "node:http";
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
import type { ErrorSpec, FakeModel, FakeUpstreamProfile, ProfileSpec } from "./fake-upstream-profiles.js";
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
import {
  chatParameters,
  completionParameters,
  embeddingParameters,
  parseFakeControl,
  tgiTypeRejection,
  unknownParameter,
} from "./fake-upstream-requests.js";
import type { FakeControl } from "./fake-upstream-requests.js";

export { fakeEmbedding, fakeInputTokens, fakePromptTokens, fakeReplyText, fakeReplyWord, fakeToolCalls } from "./fake-upstream-content.js";
export type { FakeToolCall } from "./fake-upstream-content.js";
export { fakeUpstreamProfiles } from "./fake-upstream-profiles.js";
export type { FakeModel, FakeUpstreamProfile } from "./fake-upstream-profiles.js";
export type { FakeControl } from "./fake-upstream-requests.js";

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

/** How a recorded request ended. */
export type FakeRequestOutcome = "pending" | "completed" | "client-aborted" | "server-destroyed";

export interface RecordedRequest {
  /** Position in `requests`, counted from the last reset(). */
  readonly index: number;
  readonly method: string;
  /** The path without the query string. */
  readonly path: string;
  /** The request target as sent, query included. */
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  /** The parsed JSON body; undefined for an empty or unparseable body (see rawBody). */
  readonly body: unknown;
  readonly rawBody: string;
  /** The merged `fake` control (header over body), or null when the request sent none. */
  readonly control: FakeControl | null;
  /** Whether the body asked for a stream (`stream: true`). */
  readonly stream: boolean;
  /** Date.now() when the request arrived. */
  readonly receivedAt: number;
  /** The status sent, once headers went out. */
  readonly status: number | null;
  readonly outcome: FakeRequestOutcome;
  /** Date.now() when the response finished. */
  readonly finishedAt: number | null;
  /** Date.now() when the client closed the connection before the response finished. */
  readonly abortedAt: number | null;
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
  /** Clears recordings, `failTimes` counters and id counters. */
  reset(): void;
  /** Stops listening and destroys every open socket, hanging streams included. */
  close(): Promise<void>;
}

type MutableRecord = { -readonly [Key in keyof RecordedRequest]: RecordedRequest[Key] };

interface Exchange {
  request: IncomingMessage;
  response: ServerResponse;
  record: MutableRecord | null;
  spec: ProfileSpec;
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

  const requests: MutableRecord[] = [];
  const failureCounts = new Map<string, number>();
  const changeListeners = new Set<() => void>();
  const sockets = new Set<Socket>();
  let responseCounter = 0;
  let closing = false;

  const notify = (): void => {
    if (changeListeners.size === 0) return;
    for (const listener of [...changeListeners]) listener();
  };

  function track(exchange: Exchange): void {
    const { record, response } = exchange;
    if (record === null) return;
    response.once("close", () => {
      if (record.outcome === "pending") {
        if (response.writableFinished) {
          record.outcome = "completed";
          record.finishedAt = Date.now();
        } else if (closing) {
          record.outcome = "server-destroyed";
        } else {
          record.outcome = "client-aborted";
          record.abortedAt = Date.now();
        }
      }
      notify();
    });
  }

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
    sendBody(exchange, error.status, renderErrorBody(exchange.spec.errorStyle, error), exchange.spec.jsonHeaders);
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
    sendBody(exchange, 401, renderUnauthorized(exchange.spec, sent !== undefined), exchange.spec.jsonHeaders);
    return false;
  }

  /**
   * The steps every endpoint shares after parsing: the first-byte delay, then the scripted failures
   * (`status` / `failTimes`), then a non-stream `failAfterChunks` / `hangAfterChunks`. Returns false
   * when the request has been answered (or dropped) here.
   */
  async function applyControl(exchange: Exchange, control: FakeControl, stream: boolean): Promise<boolean> {
    const { response } = exchange;
    if (control.firstByteDelayMs !== undefined && control.firstByteDelayMs > 0) {
      if (!(await pause(response, control.firstByteDelayMs))) return false;
    }
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
          sendBody(exchange, status, JSON.stringify(control.errorBody), exchange.spec.jsonHeaders);
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
    const { response, spec: profileOfExchange } = exchange;
    setStatus(exchange, 200);
    response.writeHead(200, profileOfExchange.streamHeaders);
    // Without pacing the stream goes out in one write anyway; with it, push the headers now so the
    // client sees the response start before the first chunk.
    if (!isPlainStream(control)) response.flushHeaders();
    await writeStream({
      response,
      plan,
      control,
      errorEvent: streamErrorEvent(profileOfExchange),
      onDestroy: () => markDestroyed(exchange),
    });
  }

  async function replay(exchange: Exchange, control: FakeControl, name: string): Promise<void> {
    const bytes = loadReplay(replayDirectory, name);
    if (bytes === null) {
      sendError(exchange, openAiError(400, `No capture named '${name}' in ${replayDirectory}.`, "fake.replay", null));
      return;
    }
    const pieces = splitReplay(bytes, control.replayChunkBytes, !isPlainStream(control));
    await sendStream(exchange, { head: "", chunks: pieces, tail: "" }, control);
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
      const message =
        spec.errorStyle === "vllm"
          ? "Stream options can only be defined when `stream=True`."
          : "The 'stream_options' parameter is only allowed when 'stream' is enabled.";
      sendError(exchange, openAiError(400, message, "stream_options", null));
      return false;
    }
    return true;
  }

  async function chatCompletions(exchange: Exchange, body: Record<string, unknown>, control: FakeControl): Promise<void> {
    if (!validateGeneration(exchange, body, "messages")) return;
    const stream = body.stream === true;
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
    const stream = body.stream === true;
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
    let record: MutableRecord | null = null;
    if (recording) {
      record = {
        index: requests.length,
        method,
        path,
        url,
        headers: request.headers,
        body: undefined,
        rawBody,
        control: null,
        stream: false,
        receivedAt,
        status: null,
        outcome: "pending",
        finishedAt: null,
        abortedAt: null,
      };
      requests.push(record);
    }
    const exchange: Exchange = { request, response, record, spec };
    track(exchange);
    notify();

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

  function waitFor<Result>(
    requestIndex: number,
    timeoutMs: number,
    settle: (record: MutableRecord) => { value: Result } | { error: Error } | null,
    timeoutMessage: string,
  ): Promise<Result> {
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        const record = requests[requestIndex];
        if (record === undefined) return false;
        const result = settle(record);
        if (result === null) return false;
        if ("error" in result) reject(result.error);
        else resolve(result.value);
        return true;
      };
      if (check()) return;
      const listener = (): void => {
        if (!check()) return;
        clearTimeout(timer);
        changeListeners.delete(listener);
      };
      const timer = setTimeout(() => {
        changeListeners.delete(listener);
        reject(new Error(timeoutMessage));
      }, timeoutMs);
      changeListeners.add(listener);
    });
  }

  return {
    url,
    chatCompletionsUrl: `${url}/v1/chat/completions`,
    profile,
    requests,
    waitForAbort(requestIndex, timeoutMs = 1000) {
      return waitFor<number>(
        requestIndex,
        timeoutMs,
        (record) => {
          if (record.abortedAt !== null) return { value: record.abortedAt };
          if (record.outcome !== "pending") {
            return { error: new Error(`request ${requestIndex} ended without a client abort (${record.outcome})`) };
          }
          return null;
        },
        `request ${requestIndex} was not aborted within ${timeoutMs} ms`,
      );
    },
    waitForRequest(requestIndex, timeoutMs = 1000) {
      return waitFor<RecordedRequest>(
        requestIndex,
        timeoutMs,
        (record) => ({ value: record }),
        `request ${requestIndex} did not arrive within ${timeoutMs} ms`,
      );
    },
    setModels(next) {
      models = next.map(toModel);
      modelsBody = renderModels(spec, models);
    },
    reset() {
      requests.length = 0;
      failureCounts.clear();
      responseCounter = 0;
    },
    close() {
      closing = true;
      for (const socket of sockets) socket.destroy();
      return new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve())));
    },
  };
}

const noControl: FakeControl = {};
const openAiJsonHeadersForRoutes = { "content-type": "application/json" };
