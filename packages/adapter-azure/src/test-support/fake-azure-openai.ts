/**
 * A fake Azure OpenAI data plane on a real loopback socket (node:http on 127.0.0.1), answering in
 * Azure's shapes (wire-formats §2.2, §3): the deployments URL with its api-version check, the v1
 * URL, `api-key` and bearer auth, streams with content-filter annotations, and Azure's error
 * bodies. Tests steer it per deployment (`behaviour`) or per request with a `fake` body field,
 * which the adapter forwards like any other field. Not exported from the package.
 */
import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";

export interface FakeAzureControl {
  /** Stream this capture verbatim: a file of core's fixtures or this package's. */
  replay?: string;
  /** Split the replay into pieces of this many bytes instead of one piece per event. */
  replayChunkBytes?: number;
  /** Pause before each piece or chunk. */
  intervalMs?: number;
  /** Content chunks of a generated stream. Default 4. */
  chunks?: number;
  /** Destroy the socket after N content chunks. */
  failAfterChunks?: number;
  /** Answer the 400 content-filter error, in Azure's `innererror` or `inner_error` spelling. */
  contentFilter?: "innererror" | "inner_error";
  /** Answer this HTTP status with Azure's error body for it. */
  status?: number;
  retryAfterMs?: number;
  retryAfter?: number;
}

export interface FakeAzureDeployment {
  name: string;
  /** What Azure reports as `model`: the underlying model and version. */
  model: string;
  /** Applied to every request to this deployment, before the request's own `fake`. */
  behaviour?: FakeAzureControl;
}

export interface RecordedAzureRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: IncomingMessage["headers"];
  body: Record<string, unknown> | null;
  shape: "deployments" | "v1" | "other";
  deployment: string | null;
  status: number | null;
  aborted: boolean;
  /** Date.now() when the request arrived. */
  receivedAt: number;
}

export interface FakeAzureOpenAIOptions {
  deployments?: FakeAzureDeployment[];
  /** Keys accepted in `api-key` (and as a bearer on the v1 API). */
  apiKeys?: string[];
  /** Decides whether a bearer token (Entra ID) is valid. Default: none is. */
  acceptsToken?: (token: string) => boolean;
  /** Dated api-versions the deployments URL accepts. */
  apiVersions?: string[];
  /** `x-ms-region` on every answer. */
  region?: string;
}

export interface FakeAzureOpenAI {
  /** `http://127.0.0.1:<port>`: the resource endpoint. */
  readonly url: string;
  readonly requests: RecordedAzureRequest[];
  addDeployment(deployment: FakeAzureDeployment): void;
  acceptApiKey(key: string): void;
  /** Resolves true once request `index` was aborted by the client within `ms`, false otherwise. */
  abortedWithin(index: number, ms: number): Promise<boolean>;
  close(): Promise<void>;
}

const coreFixtures = new URL("../../../core/src/testing/__fixtures__/sse/", import.meta.url);
const ownFixtures = new URL("../__fixtures__/sse/", import.meta.url);

/** The bytes of a capture from its first `data:` line (the comment header left out). */
export function loadCapture(name: string): string {
  const file = name.endsWith(".txt") ? name : `${name}.txt`;
  let text: string;
  try {
    text = readFileSync(new URL(file, ownFixtures), "utf8");
  } catch {
    text = readFileSync(new URL(file, coreFixtures), "utf8");
  }
  // The header's comment lines may quote `data:` themselves; the stream starts at the first line that is one.
  const start = /^data:/m.exec(text)?.index ?? 0;
  return text.slice(start);
}

/** A capture's payloads, `[DONE]` left out, read independently of the SSE reader under test. */
export function capturePayloads(name: string): string[] {
  return loadCapture(name)
    .split("\n")
    .filter((line) => line.startsWith("data:"))
    .map((line) => line.slice(line.startsWith("data: ") ? 6 : 5))
    .filter((payload) => payload !== "[DONE]");
}

const errorFixtures = new URL("../__fixtures__/errors/", import.meta.url);

export function contentFilterErrorBody(spelling: "innererror" | "inner_error"): string {
  const file = spelling === "innererror" ? "azure-400-content_filter-innererror.json" : "azure-400-content_filter-inner_error.json";
  return readFileSync(new URL(file, errorFixtures), "utf8");
}

const filterResults = {
  hate: { filtered: false, severity: "safe" },
  self_harm: { filtered: false, severity: "safe" },
  sexual: { filtered: false, severity: "safe" },
  violence: { filtered: false, severity: "safe" },
};
const promptFilterResults = [{ prompt_index: 0, content_filter_results: { ...filterResults, jailbreak: { filtered: false, detected: false } } }];

/** What the fake answers a non-streamed chat with: `content`, 12 prompt and 7 completion tokens. */
export const fakeCompletion = { content: "Sluices raise and lower boats between water levels.", promptTokens: 12, completionTokens: 7 };

const defaultApiVersions = ["2024-02-01", "2024-06-01", "2024-10-21", "2024-12-01-preview", "2025-04-01-preview"];

function azureError(code: string, message: string, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ error: { code, message, ...extra } });
}

function errorForStatus(status: number, apiVersion: string): string {
  switch (status) {
    case 400:
      return JSON.stringify({
        error: { message: "Invalid value for 'temperature': must be at most 2.", type: "invalid_request_error", param: "temperature", code: "invalid_value" },
      });
    case 401:
      return azureError(
        "401",
        "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource.",
      );
    case 429:
      return azureError(
        "429",
        `Requests to the ChatCompletions_Create Operation under Azure OpenAI API version ${apiVersion} have exceeded token rate limit of your current AIServices S0 pricing tier. Please retry after 1 second. Please go here: https://aka.ms/oai/quotaincrease if you would like to further increase the default rate limit.`,
      );
    default:
      return JSON.stringify({
        error: { message: "The server had an error processing your request. Sorry about that!", type: "server_error", param: null, code: null },
      });
  }
}

/** Dated versions refusing a field, as `fitBodyToApiVersion` expects of real Azure (wire-formats §3.3). */
function refusedField(body: Record<string, unknown>, apiVersion: string): string | null {
  const preview = apiVersion.endsWith("-preview");
  const date = apiVersion.slice(0, 10);
  if (body.stream_options !== undefined && date < (preview ? "2024-09-01" : "2024-10-21")) return "stream_options";
  if (body.max_completion_tokens !== undefined && date < (preview ? "2024-09-01" : "2024-10-21")) return "max_completion_tokens";
  if (body.parallel_tool_calls !== undefined && (!preview || date < "2024-08-01")) return "parallel_tool_calls";
  return null;
}

function parseObject(raw: string): Record<string, unknown> | null {
  try {
    const parsed: unknown = JSON.parse(raw);
    return typeof parsed === "object" && parsed !== null && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

function readBody(request: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = "";
    request.setEncoding("utf8");
    request.on("data", (chunk: string) => (text += chunk));
    request.on("end", () => resolve(text));
    request.on("error", reject);
  });
}

function pause(response: ServerResponse, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    if (response.destroyed) return resolve(false);
    const timer = setTimeout(() => {
      response.off("close", onClose);
      resolve(!response.destroyed);
    }, ms);
    const onClose = () => {
      clearTimeout(timer);
      resolve(false);
    };
    response.once("close", onClose);
  });
}

export async function startFakeAzureOpenAI(options: FakeAzureOpenAIOptions = {}): Promise<FakeAzureOpenAI> {
  const deployments = new Map((options.deployments ?? []).map((deployment) => [deployment.name, deployment]));
  const apiKeys = new Set(options.apiKeys ?? []);
  const acceptsToken = options.acceptsToken ?? (() => false);
  const apiVersions = new Set(options.apiVersions ?? defaultApiVersions);
  const region = options.region ?? "East US 2";
  const requests: RecordedAzureRequest[] = [];
  const sockets = new Set<Socket>();
  let counter = 0;

  function send(response: ServerResponse, record: RecordedAzureRequest, status: number, body: string, headers: Record<string, string> = {}): void {
    record.status = status;
    response.writeHead(status, {
      "content-type": "application/json",
      "content-length": String(Buffer.byteLength(body)),
      "apim-request-id": `apim-${++counter}`,
      "x-ms-region": region,
      ...headers,
    });
    response.end(body);
  }

  function authorized(request: IncomingMessage, shape: "deployments" | "v1"): boolean {
    const key = request.headers["api-key"];
    if (typeof key === "string") return apiKeys.has(key);
    const authorization = request.headers.authorization;
    if (typeof authorization !== "string" || !authorization.startsWith("Bearer ")) return false;
    const bearer = authorization.slice(7);
    // The v1 API also takes the key as a bearer (wire-formats §3.2); the dated API takes tokens only.
    return acceptsToken(bearer) || (shape === "v1" && apiKeys.has(bearer));
  }

  async function stream(response: ServerResponse, record: RecordedAzureRequest, deployment: FakeAzureDeployment, control: FakeAzureControl, body: Record<string, unknown>): Promise<void> {
    record.status = 200;
    response.writeHead(200, {
      "content-type": "text/event-stream; charset=utf-8",
      "apim-request-id": `apim-${++counter}`,
      "x-ms-region": region,
      "x-ms-deployment-name": deployment.name,
    });
    response.flushHeaders();
    let pieces: string[];
    if (control.replay !== undefined) {
      const bytes = loadCapture(control.replay);
      if (control.replayChunkBytes !== undefined) {
        pieces = [];
        for (let at = 0; at < bytes.length; at += control.replayChunkBytes) pieces.push(bytes.slice(at, at + control.replayChunkBytes));
      } else {
        pieces = bytes.split(/(?<=\n\n)/);
      }
    } else {
      const id = `chatcmpl-fake${++counter}`;
      const base = { created: 1_762_317_021, id, model: deployment.model, object: "chat.completion.chunk", system_fingerprint: "fp_fake" };
      const event = (payload: unknown) => `data: ${JSON.stringify(payload)}\n\n`;
      pieces = [event({ choices: [], created: 0, id: "", model: "", object: "", prompt_filter_results: promptFilterResults })];
      pieces.push(event({ choices: [{ content_filter_results: {}, delta: { content: "", role: "assistant" }, finish_reason: null, index: 0, logprobs: null }], ...base }));
      const count = control.chunks ?? 4;
      for (let index = 0; index < count; index++) {
        if (control.failAfterChunks !== undefined && index === control.failAfterChunks) {
          pieces.push("<destroy>");
          break;
        }
        pieces.push(event({ choices: [{ content_filter_results: filterResults, delta: { content: ` word${index}` }, finish_reason: null, index: 0, logprobs: null }], ...base }));
      }
      pieces.push(event({ choices: [{ content_filter_results: {}, delta: {}, finish_reason: "stop", index: 0, logprobs: null }], ...base }));
      const options = body.stream_options as { include_usage?: boolean } | undefined;
      if (options?.include_usage === true) {
        pieces.push(event({ choices: [], ...base, usage: { completion_tokens: count, prompt_tokens: 9, total_tokens: count + 9 } }));
      }
      pieces.push("data: [DONE]\n\n");
    }
    for (const piece of pieces) {
      if (control.intervalMs !== undefined && !(await pause(response, control.intervalMs))) return;
      if (response.destroyed) return;
      if (piece === "<destroy>") {
        // Let what was written reach the client first: the upstream dies after output.
        await new Promise((resolve) => setTimeout(resolve, 20));
        response.destroy();
        return;
      }
      response.write(piece);
    }
    response.end();
  }

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const receivedAt = Date.now();
    const url = new URL(request.url ?? "/", "http://fake");
    const method = request.method ?? "GET";
    const raw = method === "POST" ? await readBody(request) : "";
    const body = parseObject(raw);
    const record: RecordedAzureRequest = {
      method,
      path: url.pathname,
      query: url.searchParams,
      headers: request.headers,
      body,
      shape: "other",
      deployment: null,
      status: null,
      aborted: false,
      receivedAt,
    };
    const index = requests.push(record) - 1;
    response.once("close", () => {
      if (!response.writableFinished) {
        requests[index]!.aborted = true;
      }
    });

    const dated = /^\/openai\/deployments\/([^/]+)\/(chat\/completions|embeddings)$/.exec(url.pathname);
    const v1 = /^\/openai\/v1\/(chat\/completions|embeddings|models)$/.exec(url.pathname);
    if (dated === null && v1 === null) {
      send(response, record, 404, azureError("404", "Resource not found"));
      return;
    }
    const shape = dated !== null ? "deployments" : "v1";
    record.shape = shape;
    const apiVersion = url.searchParams.get("api-version");
    if (shape === "deployments") {
      if (apiVersion === null) return send(response, record, 404, azureError("404", "Resource not found"));
      if (!apiVersions.has(apiVersion)) return send(response, record, 400, azureError("BadRequest", "API version not supported"));
    } else if (apiVersion !== null && apiVersion !== "v1" && apiVersion !== "preview") {
      return send(response, record, 400, azureError("BadRequest", "API version not supported"));
    }
    if (!authorized(request, shape)) return send(response, record, 401, errorForStatus(401, apiVersion ?? "v1"));

    const route = dated !== null ? dated[2]! : v1![1]!;
    if (route === "models") {
      const data = [...deployments.values()].map((deployment) => ({ id: deployment.model, object: "model", created: 1_722_902_400 }));
      return send(response, record, 200, JSON.stringify({ data, object: "list" }));
    }
    if (method !== "POST" || body === null) {
      return send(response, record, 400, azureError("BadRequest", "The request body must be a JSON object."));
    }
    const deploymentName = dated !== null ? decodeURIComponent(dated[1]!) : typeof body.model === "string" ? body.model : "";
    record.deployment = deploymentName;
    const deployment = deployments.get(deploymentName);
    if (deployment === undefined) {
      return send(
        response,
        record,
        404,
        azureError(
          "DeploymentNotFound",
          "The API deployment for this resource does not exist. If you created the deployment within the last 5 minutes, please wait a moment and try again.",
        ),
      );
    }
    if (shape === "deployments") {
      const refused = refusedField(body, apiVersion!);
      if (refused !== null) {
        return send(
          response,
          record,
          400,
          JSON.stringify({ error: { message: `Unknown parameter: '${refused}'.`, type: "invalid_request_error", param: refused, code: "unknown_parameter" } }),
        );
      }
    }
    const control: FakeAzureControl = { ...deployment.behaviour, ...(body.fake as FakeAzureControl | undefined) };
    if (control.contentFilter !== undefined) {
      return send(response, record, 400, contentFilterErrorBody(control.contentFilter), { "x-ms-rai-invoked": "true" });
    }
    if (control.status !== undefined) {
      const headers: Record<string, string> = {};
      if (control.retryAfterMs !== undefined) headers["retry-after-ms"] = String(control.retryAfterMs);
      if (control.retryAfter !== undefined) headers["retry-after"] = String(control.retryAfter);
      if (control.status === 429) {
        headers["x-ratelimit-remaining-requests"] = "0";
        headers["x-ratelimit-remaining-tokens"] = "0";
      }
      return send(response, record, control.status, errorForStatus(control.status, apiVersion ?? "v1"), headers);
    }

    if (route === "embeddings") {
      const inputs = Array.isArray(body.input) ? body.input : [body.input];
      const data = inputs.map((_input, position) => ({ embedding: [0.0023064255, -0.009327292, 0.015797347], index: position, object: "embedding" }));
      return send(response, record, 200, JSON.stringify({ data, model: deployment.model, object: "list", usage: { prompt_tokens: 5 * inputs.length, total_tokens: 5 * inputs.length } }));
    }
    if (body.stream === true) return stream(response, record, deployment, control, body);
    const completion = {
      choices: [
        {
          content_filter_results: filterResults,
          finish_reason: "stop",
          index: 0,
          logprobs: null,
          message: { annotations: [], content: fakeCompletion.content, refusal: null, role: "assistant" },
        },
      ],
      created: 1_762_317_021,
      id: `chatcmpl-fake${++counter}`,
      model: deployment.model,
      object: "chat.completion",
      prompt_filter_results: promptFilterResults,
      system_fingerprint: "fp_fake",
      usage: {
        completion_tokens: fakeCompletion.completionTokens,
        completion_tokens_details: { accepted_prediction_tokens: 0, audio_tokens: 0, reasoning_tokens: 0, rejected_prediction_tokens: 0 },
        prompt_tokens: fakeCompletion.promptTokens,
        prompt_tokens_details: { audio_tokens: 0, cached_tokens: 0 },
        total_tokens: fakeCompletion.promptTokens + fakeCompletion.completionTokens,
      },
    };
    send(response, record, 200, JSON.stringify(completion), { "x-ms-deployment-name": deployment.name, "x-ratelimit-remaining-requests": "99" });
  }

  const server = createServer({ keepAlive: true, noDelay: true }, (request, response) => {
    handle(request, response).catch(() => {
      if (!response.headersSent && !response.destroyed) {
        response.writeHead(500, { "content-type": "application/json" });
        response.end(errorForStatus(500, "v1"));
      } else {
        response.destroy();
      }
    });
  });
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    addDeployment(deployment) {
      deployments.set(deployment.name, deployment);
    },
    acceptApiKey(key) {
      apiKeys.add(key);
    },
    async abortedWithin(index, ms) {
      const deadline = Date.now() + ms;
      for (;;) {
        if (requests[index]?.aborted === true) return true;
        if (Date.now() >= deadline) return false;
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
    },
    close() {
      for (const socket of sockets) socket.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
