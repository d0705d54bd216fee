import { GatewayError, answerAsStream, readResponseUsage, relayedHeaders, sseBodyBatches, withOutputCap } from "@sluice/core";
import type { Deployment, OpenAIRequestBody, ProviderCall, ProviderResponse, ProviderStream } from "@sluice/core";
import { readJsonBody } from "./tunnel-body.js";
import { headerText, parseErrorBody, readErrorObject } from "./tunnel-errors.js";
import type { TunnelLink } from "./tunnel-link.js";

/** A non-streamed answer larger than this is not a chat answer. */
const jsonBodyLimit = 64 * 1024 * 1024;

/**
 * One model behind one tunnel. Bodies pass through as the gateway built them; answers pass back
 * unparsed but for the usage. The paths are OpenAI's, under `/v1`: the far end (the agent, or the
 * host's tunnel target) maps them onto the model server.
 */
export class TunnelDeployment implements Deployment {
  readonly id: string;
  readonly model: string;
  readonly #link: TunnelLink;

  constructor(input: { id: string; model: string; link: TunnelLink }) {
    this.id = input.id;
    this.model = input.model;
    this.#link = input.link;
  }

  chatCompletion(call: ProviderCall): Promise<ProviderResponse> {
    return this.#complete("/v1/chat/completions", withoutStreaming(capped(call)), call, true);
  }

  streamChatCompletion(call: ProviderCall): Promise<ProviderStream> {
    return this.#stream("/v1/chat/completions", { ...capped(call), stream: true }, call);
  }

  embeddings(call: ProviderCall): Promise<ProviderResponse> {
    return this.#complete("/v1/embeddings", call.body, call, false);
  }

  /**
   * Legacy `/completions`. The gateway sends a streamed legacy completion here too (the contract
   * has no streaming variant of it) and reads the result as a ProviderStream.
   */
  completions(call: ProviderCall): Promise<ProviderResponse> {
    if (call.body.stream === true) {
      return this.#stream("/v1/completions", capped(call), call) as Promise<unknown> as Promise<ProviderResponse>;
    }
    return this.#complete("/v1/completions", withoutStreaming(capped(call)), call, true);
  }

  #headers(call: ProviderCall, accept: string): Record<string, string> {
    return { "content-type": "application/json", accept, "x-request-id": call.requestId };
  }

  async #complete(path: string, body: OpenAIRequestBody, call: ProviderCall, outputRequired: boolean): Promise<ProviderResponse> {
    const response = await this.#link.send({
      method: "POST",
      path,
      headers: this.#headers(call, "application/json"),
      body: JSON.stringify(body),
      signal: call.signal,
    });
    const { object: parsed, text } = await readJsonBody(response.body, call.signal, jsonBodyLimit);
    // Some servers answer 200 with nothing but an error object.
    if (parsed.error !== undefined && parsed.error !== null && parsed.choices === undefined && parsed.data === undefined) {
      const said = readErrorObject(parsed).message;
      throw new GatewayError("upstream_error", `The model server reported an error: ${said ?? "(no message)"}`);
    }
    return {
      status: response.status,
      headers: relayedHeaders(response.headers),
      body: parsed,
      usage: readResponseUsage(parsed, { outputRequired }),
      text,
    };
  }

  async #stream(path: string, body: OpenAIRequestBody, call: ProviderCall): Promise<ProviderStream> {
    const response = await this.#link.send({
      method: "POST",
      path,
      headers: this.#headers(call, "text/event-stream"),
      body: JSON.stringify(body),
      signal: call.signal,
    });
    const contentType = headerText(response.headers, "content-type");
    if (contentType.includes("application/json")) {
      // A 200 with an error object, or a server that ignored `stream: true`: its whole answer is
      // relayed as a stream, rather than thrown away and asked for again.
      const { object: parsed, text } = await readJsonBody(response.body, call.signal, jsonBodyLimit);
      const batches = answerAsStream(parsed);
      if (batches === null) {
        const said = parseErrorBody(text, contentType).message;
        throw new GatewayError(
          "upstream_error",
          said === null ? "The model server answered a streaming request with JSON that is not a completion." : `The model server reported an error: ${said}`,
        );
      }
      return { status: response.status, headers: relayedHeaders(response.headers), batches };
    }
    return { status: response.status, headers: relayedHeaders(response.headers), batches: sseBodyBatches(response.body, call.signal) };
  }
}

/** The body with the gateway's output cap, as `max_tokens`: every OpenAI-compatible server knows it. */
function capped(call: ProviderCall): OpenAIRequestBody {
  return withOutputCap(call.body, call.outputCap, "max_tokens");
}

/** `stream_options` goes whenever `stream` is not true: vLLM and OpenAI answer 400 to it otherwise. */
function withoutStreaming(body: OpenAIRequestBody): OpenAIRequestBody {
  if (body.stream_options === undefined && body.stream !== true) return body;
  const { stream_options: _streamOptions, ...rest } = body;
  if (rest.stream === true) rest.stream = false;
  return rest as OpenAIRequestBody;
}
