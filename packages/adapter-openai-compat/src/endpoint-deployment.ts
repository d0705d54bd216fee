import { GatewayError, answerAsStream, headerText, readBounded, readResponseUsage, relayedHeaders, withOutputCap } from "@sluice/core";
import type { Deployment, OpenAIRequestBody, ProviderCall, ProviderResponse, ProviderStream, UndiciUpstreamClient } from "@sluice/core";
import { parseUpstreamErrorBody, readUpstreamErrorObject } from "./upstream-error.js";
import { routePath } from "./upstream-target.js";
import type { UpstreamTarget } from "./upstream-target.js";

/** One configured endpoint, shared by the deployments of every model served there. */
export interface Endpoint {
  readonly target: UpstreamTarget;
  readonly client: UndiciUpstreamClient;
  /** The static settings headers and the `authorization` from the apiKey secret, lower-case. */
  readonly headers: Readonly<Record<string, string>>;
  /**
   * Never send `stream_options`: set by `quirks.dropStreamOptions`, or learned when the server
   * refuses the field (then for as long as this provider lives, until its settings change).
   */
  dropStreamOptions: boolean;
}

const jsonBodyLimit = 64 * 1024;

/**
 * A Deployment of this adapter. Cast `provider.deployments(model)` to it to stream legacy
 * completions with a typed result.
 */
export interface OpenAICompatDeployment extends Deployment {
  /** Legacy `/completions`; with `stream: true` in the body it answers a ProviderStream (see the class). */
  completions(call: ProviderCall): Promise<ProviderResponse>;
  /** A streamed legacy completion (`POST {base}/completions` with `stream: true`). */
  streamCompletions(call: ProviderCall): Promise<ProviderStream>;
}

/**
 * One model at one endpoint. Bodies pass through as the gateway built them, but for the streaming
 * fields each route must get right; answers pass back unparsed but for the usage.
 */
export class EndpointDeployment implements OpenAICompatDeployment {
  readonly id: string;
  readonly model: string;
  readonly #endpoint: Endpoint;

  constructor(input: { id: string; model: string; endpoint: Endpoint }) {
    this.id = input.id;
    this.model = input.model;
    this.#endpoint = input.endpoint;
  }

  chatCompletion(call: ProviderCall): Promise<ProviderResponse> {
    return this.#complete(this.#endpoint.target.chatPath, withoutStreaming(capped(call)), call, true);
  }

  streamChatCompletion(call: ProviderCall): Promise<ProviderStream> {
    return this.#stream(this.#endpoint.target.chatPath, this.#streaming(capped(call)), call);
  }

  embeddings(call: ProviderCall): Promise<ProviderResponse> {
    return this.#complete(routePath(this.#endpoint.target, "/embeddings"), call.body, call, false);
  }

  /** Legacy `/completions`, answered whole. */
  completions(call: ProviderCall): Promise<ProviderResponse> {
    return this.#complete(routePath(this.#endpoint.target, "/completions"), withoutStreaming(capped(call)), call, true);
  }

  /** A streamed legacy completion: the same SSE framing and reader as chat. */
  streamCompletions(call: ProviderCall): Promise<ProviderStream> {
    return this.#stream(routePath(this.#endpoint.target, "/completions"), this.#streaming(capped(call)), call);
  }

  /** `stream: true`, and `stream_options` kept unless the server is known to reject it. */
  #streaming(body: OpenAIRequestBody): OpenAIRequestBody {
    // The gateway's streaming body usually needs nothing changed: no copy then.
    if (body.stream === true && !(this.#endpoint.dropStreamOptions && body.stream_options !== undefined)) return body;
    const out: OpenAIRequestBody = { ...body, stream: true };
    if (this.#endpoint.dropStreamOptions) delete out.stream_options;
    return out;
  }

  #headers(call: ProviderCall, accept: string): Record<string, string> {
    return {
      ...this.#endpoint.headers,
      "content-type": "application/json",
      accept,
      "x-request-id": call.requestId,
    };
  }

  async #complete(path: string, body: OpenAIRequestBody, call: ProviderCall, outputRequired: boolean): Promise<ProviderResponse> {
    const response = await this.#endpoint.client.request({
      origin: this.#endpoint.target.origin,
      path,
      method: "POST",
      headers: this.#headers(call, "application/json"),
      body: JSON.stringify(body),
      signal: call.signal,
    });
    const { object: parsed, text } = await this.#endpoint.client.readJsonBody(response.body, call.signal);
    // Some servers answer 200 with nothing but an error object.
    if (parsed.error !== undefined && parsed.error !== null && parsed.choices === undefined && parsed.data === undefined) {
      const error = readUpstreamErrorObject(parsed);
      throw new GatewayError("upstream_error", `The upstream reported an error: ${error.message ?? "(no message)"}`);
    }
    return {
      status: response.statusCode,
      headers: relayedHeaders(response.headers),
      body: parsed,
      usage: readResponseUsage(parsed, { outputRequired }),
      text,
    };
  }

  /**
   * A stream; a server that refuses `stream_options` with a 400 (wire-formats §3.3: strict
   * servers, Azure's older API versions behind an OpenAI-style URL) is asked again without it,
   * and not sent it again. Its streams then carry no usage, and the gateway counts their output.
   */
  async #stream(path: string, body: OpenAIRequestBody, call: ProviderCall): Promise<ProviderStream> {
    try {
      return await this.#streamOnce(path, body, call);
    } catch (error) {
      if (body.stream_options === undefined || !refusesStreamOptions(error) || call.signal.aborted) throw error;
      this.#endpoint.dropStreamOptions = true;
      const { stream_options: _refused, ...rest } = body;
      return this.#streamOnce(path, rest as OpenAIRequestBody, call);
    }
  }

  async #streamOnce(path: string, body: OpenAIRequestBody, call: ProviderCall): Promise<ProviderStream> {
    const response = await this.#endpoint.client.request({
      origin: this.#endpoint.target.origin,
      path,
      method: "POST",
      headers: this.#headers(call, "text/event-stream"),
      body: JSON.stringify(body),
      signal: call.signal,
    });
    const contentType = headerText(response.headers, "content-type");
    if (/^\s*text\/html\b/i.test(contentType)) {
      // A login wall or a web app's catch-all page at the configured URL, not a model server. Read
      // (bounded) rather than cut, so the connection stays usable.
      await readBounded(response.body, jsonBodyLimit).catch(() => undefined);
      throw new GatewayError("upstream_error", "The upstream answered a streaming request with an HTML page instead of an event stream: check the provider's endpoint.");
    }
    if (contentType.includes("application/json")) {
      // A 200 with an error object, or a server that ignored `stream: true`: its whole answer is
      // relayed as a stream, rather than thrown away and asked for again.
      const { object: parsed, text } = await this.#endpoint.client.readJsonBody(response.body, call.signal);
      const batches = answerAsStream(parsed);
      if (batches === null) {
        const said = parseUpstreamErrorBody(text, contentType).message;
        throw new GatewayError(
          "upstream_error",
          said === null ? "The upstream answered a streaming request with JSON that is not a completion." : `The upstream reported an error: ${said}`,
        );
      }
      return { status: response.statusCode, headers: relayedHeaders(response.headers), batches };
    }
    return {
      status: response.statusCode,
      headers: relayedHeaders(response.headers),
      batches: response.body.batches(),
    };
  }
}

/**
 * A non-streaming body. `stream_options` goes whenever `stream` is not true: vLLM and OpenAI
 * answer 400 to it otherwise (wire-formats §4, "Unknown fields").
 */
/** A 400 that names `stream_options` as the field at fault. */
function refusesStreamOptions(error: unknown): boolean {
  if (!GatewayError.is(error) || error.status !== 400) return false;
  return error.param === "stream_options" || error.message.includes("stream_options");
}

/** The body with the gateway's output cap, as `max_tokens`: every OpenAI-compatible server knows it. */
function capped(call: ProviderCall): OpenAIRequestBody {
  return withOutputCap(call.body, call.outputCap, "max_tokens");
}

function withoutStreaming(body: OpenAIRequestBody): OpenAIRequestBody {
  if (body.stream_options === undefined && body.stream !== true) return body;
  const { stream_options: _streamOptions, ...rest } = body;
  if (rest.stream === true) rest.stream = false;
  return rest as OpenAIRequestBody;
}
