import { LeaseRenewer } from "./lease-renewer.js";
import type { z } from "zod";
import { systemClock } from "../clock/clock.js";
import { GatewayError } from "../errors/gateway-error.js";
import { createEventBus } from "../events/sluice-events.js";
import type { SluiceEventBus } from "../events/sluice-events.js";
import { createId } from "../ids/create-id.js";
import { createManagement } from "../management/create-management.js";
import type { Management } from "../management/management.js";
import type { ManagementOptions } from "../management/management-options.js";
import { parseInput } from "../validation/parse-input.js";
import { authenticate } from "./authenticate.js";
import type { Caller } from "./authenticate.js";
import type { GatewayContext } from "./gateway-context.js";
import { gatewayLimits } from "./gateway-limits.js";
import type { GatewayOptions } from "./gateway-options.js";
import type { GatewayReply, GatewayRequest, JsonReply } from "./gateway-request.js";
import { handleEmbeddings } from "./handle-embeddings.js";
import { handleGeneration } from "./handle-generation.js";
import type { GenerationOperation } from "./handle-generation.js";
import { listModels } from "./list-models.js";
import { ProviderRegistry } from "./provider-registry.js";
import { AllocationDirectory } from "./choose-allocation.js";
import { StoreAnswers } from "./store-answers.js";
import { chatCompletionRequestSchema, completionRequestSchema, embeddingRequestSchema, isWellFormedChatRequest } from "./request-schemas.js";
import { modelNotFound, resolveModel } from "./resolve-model.js";

/**
 * The OpenAI-compatible gateway, independent of any HTTP stack. `createNodeHandler` and
 * `createFetchHandler` put it on the wire.
 */
export interface Gateway {
  readonly events: SluiceEventBus;
  /** The largest body the edges should read before answering 413. */
  readonly maxBodyBytes: number;
  /** The management API (providers, sharing, keys, allocations, usage) acting as a host user. */
  readonly management: Management;
  handle(request: GatewayRequest): Promise<GatewayReply>;
  /** Forgets a deleted provider's live connections. */
  forgetProvider(providerId: string): void;
  /** Closes upstream connection pools. In-flight requests finish first. */
  close(): Promise<void>;
}

const routes: Record<string, readonly string[]> = {
  "/chat/completions": ["POST"],
  "/completions": ["POST"],
  "/embeddings": ["POST"],
  "/models": ["GET"],
};

/** `management` describes the gateway to connect snippets: its public origin and OpenAI base path. */
export function createGateway(options: GatewayOptions & { management?: ManagementOptions }): Gateway {
  const events = options.events ?? createEventBus();
  const clock = options.clock ?? systemClock;
  const registry = new ProviderRegistry({ catalog: options.stores.catalog, adapters: options.adapters });
  const limits = gatewayLimits(options);
  const context: GatewayContext = {
    stores: options.stores,
    identify: options.identify,
    registry,
    allocations: new AllocationDirectory(),
    answers: new StoreAnswers(options.stores.catalog, options.stores.permissions),
    prices: options.prices ?? null,
    events,
    clock,
    maxBodyBytes: limits.maxBodyBytes,
    defaultMaxOutputTokens: limits.defaultMaxOutputTokens,
    fileTokenAllowance: limits.fileTokenAllowance,
    reservationLeaseMs: limits.reservationLeaseMs,
    leases: new LeaseRenewer(options.stores.ledger, limits.reservationLeaseMs),
    timeouts: limits.timeouts,
    retry: limits.retry,
  };

  // Lapsed holds already stop counting at once; the sweep only keeps the reservation table small.
  const sweepIntervalMs = limits.sweepIntervalMs;
  const sweeper =
    sweepIntervalMs > 0
      ? setInterval(() => {
          options.stores.ledger.sweepExpired().catch(() => 0);
        }, sweepIntervalMs)
      : null;
  sweeper?.unref();

  async function handle(request: GatewayRequest): Promise<GatewayReply> {
    const requestId = createId("req");
    const startedAt = clock.now();
    let ended = false;
    const end = (status: number, errorCode: string | null, outcome: string) => {
      if (ended) return;
      ended = true;
      events.publish("request-end", { requestId, status, errorCode, outcome, durationMs: clock.now() - startedAt, at: clock.now() });
    };
    try {
      const reply = await route(request, requestId, (result) => end(result.status, result.errorCode, result.outcome));
      if (reply.kind === "json") {
        const { status, settled } = reply;
        if (settled === undefined) end(status, null, "completed");
        else void settled.then(() => end(status, null, "completed"));
      }
      reply.headers["x-request-id"] = requestId;
      return reply;
    } catch (thrown) {
      const error = GatewayError.from(thrown);
      end(error.status, error.code, "error");
      return errorReply(error, requestId);
    }
  }

  async function route(
    request: GatewayRequest,
    requestId: string,
    onEnd: (end: { status: number; errorCode: string | null; outcome: string }) => void,
  ): Promise<GatewayReply> {
    const path = request.path.length > 1 && request.path.endsWith("/") ? request.path.slice(0, -1) : request.path;
    if (request.method === "GET" && path.startsWith("/models/")) {
      return retrieveModel(request, requestId, decodePathSegment(path.slice("/models/".length)));
    }
    const methods = routes[path];
    if (!methods) throw new GatewayError("not_found", `Invalid URL (${request.method} ${request.path}).`);
    if (!methods.includes(request.method)) {
      throw new GatewayError("method_not_allowed", `${request.method} is not allowed on ${path}; use ${methods.join(", ")}.`, {
        headers: { allow: methods.join(", ") },
      });
    }

    if (path === "/models") {
      const caller = await authenticated(request, requestId, "models", null, false);
      const data = await listModels({ context, caller, signal: request.signal });
      return json(200, { object: "list", data });
    }

    // Who is asking comes first: an unauthenticated caller learns nothing, not even what is
    // wrong with its body, and its body is not read at all.
    const caller = await authenticate({ request, keys: context.stores.keys, identify: context.identify, now: clock.now() });
    requireJsonContent(request);
    const bytes = request.body ?? (request.readBody === undefined ? null : await request.readBody());
    const bodyBytes = bytes?.byteLength ?? 0;
    const raw = readJson(bytes);
    if (path === "/embeddings") {
      const body = parseBody(embeddingRequestSchema, raw);
      started(requestId, caller, "embeddings", body.model, false);
      const resolved = await resolveModel({ modelId: body.model, caller, ...resolvers() });
      return handleEmbeddings({ context, request, requestId, body, bodyBytes, caller, resolved });
    }

    const operation: GenerationOperation = path === "/completions" ? "completions" : "chat.completions";
    const body =
      operation === "chat.completions" && isJsonObject(raw) && isWellFormedChatRequest(raw)
        ? raw
        : parseBody(operation === "completions" ? completionRequestSchema : chatCompletionRequestSchema, raw);
    started(requestId, caller, operation, body.model, body.stream === true);
    const resolved = await resolveModel({ modelId: body.model, caller, ...resolvers() });
    return handleGeneration({ context, signal: request.signal, requestId, operation, body, bodyBytes, caller, resolved, onEnd });
  }

  async function retrieveModel(request: GatewayRequest, requestId: string, modelId: string): Promise<GatewayReply> {
    const caller = await authenticated(request, requestId, "models", modelId, false);
    const model = (await listModels({ context, caller, signal: request.signal })).find((candidate) => candidate.id === modelId);
    if (!model) throw modelNotFound(modelId);
    return json(200, model);
  }

  function resolvers() {
    return { answers: context.answers, registry };
  }

  async function authenticated(
    request: GatewayRequest,
    requestId: string,
    operation: string,
    model: string | null,
    stream: boolean,
  ): Promise<Caller> {
    const caller = await authenticate({ request, keys: context.stores.keys, identify: context.identify, now: clock.now() });
    started(requestId, caller, operation, model, stream);
    return caller;
  }

  function started(requestId: string, caller: Caller, operation: string, model: string | null, stream: boolean): void {
    events.publish("request-start", {
      requestId,
      operation,
      userId: caller.userId,
      keyId: caller.key?.id ?? null,
      model,
      stream,
      at: clock.now(),
    });
  }

  return {
    events,
    maxBodyBytes: context.maxBodyBytes,
    management: createManagement({ context, adapters: options.adapters, ...(options.management ? { options: options.management } : {}) }),
    handle,
    forgetProvider: (providerId) => registry.forget(providerId),
    close: () => {
      if (sweeper) clearInterval(sweeper);
      context.leases.close();
      return registry.close();
    },
  };
}

/** A percent-encoded path segment, decoded; a malformed escape (`%E0%A4%A`) names no model, so it stays as sent. */
function decodePathSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

/** Refuses, before the body is read, one that is not sent as JSON. */
function requireJsonContent(request: GatewayRequest): void {
  const contentType = request.headers.get("content-type");
  if (contentType === undefined || !/^application\/(?:[\w.+-]+\+)?json\b/i.test(contentType.trim())) {
    throw new GatewayError(
      "unsupported_media_type",
      `Send the request body as JSON with 'Content-Type: application/json'${contentType ? ` (got '${contentType}')` : ""}.`,
    );
  }
}

function readJson(body: Uint8Array | null): unknown {
  if (body === null || body.byteLength === 0) {
    throw new GatewayError("invalid_request", "The request body is empty; send a JSON object.");
  }
  let text: string;
  let parsed: unknown;
  try {
    text = Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString("utf8");
    // Only a body with a run of 16 digits can hold an integer past 2^53; the rest parse plainly.
    parsed = longDigitRun.test(text) ? JSON.parse(text, keepLongIntegers) : JSON.parse(text);
  } catch {
    throw new GatewayError(
      "invalid_request",
      "We could not parse the JSON body of your request. The OpenAI API expects a JSON payload.",
    );
  }
  // V8 parses any depth, but copying and serializing the body again recurses, and overflows the
  // stack some thousands of levels down: a 500 for what is the client's error. A body of fewer
  // than twice as many characters as the limit cannot pass it, so only longer ones are measured.
  if (text.length > 2 * maxNesting && nestsDeeperThan(text, maxNesting)) {
    throw new GatewayError("invalid_request", `The JSON body of your request nests deeper than ${maxNesting} levels.`);
  }
  return parsed;
}

const maxNesting = 1_000;

/** Whether valid JSON `text` opens more than `limit` arrays and objects inside one another. */
function nestsDeeperThan(text: string, limit: number): boolean {
  let depth = 0;
  let inString = false;
  for (let index = 0; index < text.length; index++) {
    const code = text.charCodeAt(index);
    if (inString) {
      if (code === 0x5c) index++;
      else if (code === 0x22) inString = false;
    } else if (code === 0x22) {
      inString = true;
    } else if (code === 0x5b || code === 0x7b) {
      if (++depth > limit) return true;
    } else if (code === 0x5d || code === 0x7d) {
      depth--;
    }
  }
  return false;
}

const longDigitRun = /\d{16}/;

/** Node 22+ (V8's JSON.parse source text access): the reviver sees each number's own text. */
const rawJson = (JSON as unknown as { rawJSON?: (text: string) => unknown }).rawJSON;

/**
 * Keeps an integer a double cannot hold (a 64-bit `seed`, a vendor's id) as the client wrote it:
 * the body is parsed and serialized again for the upstream, and `9223372036854775807` would
 * otherwise arrive as `9223372036854776000`, a different number, or one a strict server refuses.
 */
function keepLongIntegers(_key: string, value: unknown, context?: { source?: string }): unknown {
  if (typeof value !== "number" || Number.isSafeInteger(value) || rawJson === undefined) return value;
  const source = context?.source;
  return source !== undefined && /^-?\d+$/.test(source) ? rawJson(source) : value;
}

function isJsonObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function parseBody<Schema extends z.ZodType>(schema: Schema, raw: unknown): z.output<Schema> {
  if (!isJsonObject(raw)) {
    throw new GatewayError("invalid_request", "The request body must be a JSON object.");
  }
  return parseInput(schema, raw, "request");
}

function json(status: number, body: unknown): JsonReply {
  return { kind: "json", status, headers: { "content-type": "application/json" }, body: JSON.stringify(body) };
}

/** An error as a JSON reply. Every reply carries a request id, even one the edge refused itself. */
export function errorReply(error: GatewayError, requestId: string = createId("req")): JsonReply {
  const headers: Record<string, string> = { "content-type": "application/json", ...error.headers };
  headers["x-request-id"] = requestId;
  return { kind: "json", status: error.status, headers, body: JSON.stringify(error.toJSON()) };
}
