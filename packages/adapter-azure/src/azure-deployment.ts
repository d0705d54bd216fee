import { GatewayError, headerText, readBounded, readResponseUsage, relayedHeaders, withOutputCap } from "@sluice/core";
import type { Deployment, OpenAIRequestBody, ProviderCall, ProviderResponse, ProviderStream, UndiciUpstreamClient } from "@sluice/core";
import { fitBodyToApiVersion } from "./api-version-fields.js";
import type { AzureEndpoint } from "./azure-endpoint.js";
import { parseAzureErrorBody } from "./azure-error.js";
import type { AzureApiShape } from "./azure-settings.js";

/** Azure's correlation and routing headers, relayed beside the common ones (wire-formats §3.3). */
const azureRelayedNames: ReadonlySet<string> = new Set(["apim-request-id", "x-ms-region", "x-ms-deployment-name"]);

/**
 * Signs requests: the `api-key` header, or an Entra ID bearer token. Synchronous for a key, so
 * the common path does not pay for a promise.
 */
export interface AzureAuthorizer {
  headers(signal: AbortSignal): Readonly<Record<string, string>> | Promise<Readonly<Record<string, string>>>;
}

/** Where one deployment is and how to call it. */
export interface AzureTarget {
  readonly endpoint: AzureEndpoint;
  readonly shape: AzureApiShape;
  /** The api-version query; undefined sends none (the v1 shape's default). */
  readonly apiVersion: string | undefined;
  readonly client: UndiciUpstreamClient;
  readonly authorizer: AzureAuthorizer;
}

const jsonBodyLimit = 64 * 1024;

/**
 * One Azure deployment. Bodies pass through as the gateway built them, but for the fields the
 * api-version refuses; answers and Azure's annotations pass back unparsed but for the usage.
 */
export class AzureDeployment implements Deployment {
  readonly id: string;
  /** The deployment name: the deployments URL carries it, and the v1 API reads it from `model`. */
  readonly model: string;
  readonly #target: AzureTarget;
  readonly #chatPath: string;
  readonly #embeddingsPath: string;

  constructor(input: { id: string; deploymentName: string; target: AzureTarget }) {
    this.id = input.id;
    this.model = input.deploymentName;
    this.#target = input.target;
    this.#chatPath = routePath(input.target, input.deploymentName, "/chat/completions");
    this.#embeddingsPath = routePath(input.target, input.deploymentName, "/embeddings");
  }

  chatCompletion(call: ProviderCall): Promise<ProviderResponse> {
    return this.#complete(this.#chatPath, this.#fit(withoutStreaming(capped(call))), call, true);
  }

  async streamChatCompletion(call: ProviderCall): Promise<ProviderStream> {
    const body = this.#fit({ ...capped(call), stream: true });
    const response = await this.#target.client.request({
      origin: this.#target.endpoint.origin,
      path: this.#chatPath,
      method: "POST",
      headers: await this.#headers(call, "text/event-stream"),
      body: JSON.stringify(body),
      signal: call.signal,
    });
    const contentType = headerText(response.headers, "content-type");
    if (contentType.includes("application/json")) {
      // A 200 with an error object, or a proxy that ignored `stream: true`: no stream to relay.
      const said = parseAzureErrorBody(await readBounded(response.body, jsonBodyLimit)).message;
      throw new GatewayError(
        "upstream_error",
        said === null ? "Azure OpenAI answered a streaming request with JSON instead of an event stream." : `Azure OpenAI reported an error: ${said}`,
      );
    }
    return {
      status: response.statusCode,
      headers: relayedHeaders(response.headers, azureRelayedNames),
      // Every event reaches the client as Azure wrote it: the `choices: []` preamble with
      // prompt_filter_results, per-choice content_filter_results, and the delta-less annotation
      // chunks its asynchronous filter sends after the finish chunk (wire-formats §2.2).
      batches: response.body.batches(),
    };
  }

  embeddings(call: ProviderCall): Promise<ProviderResponse> {
    return this.#complete(this.#embeddingsPath, call.body, call, false);
  }

  #fit(body: OpenAIRequestBody): OpenAIRequestBody {
    return this.#target.shape === "v1" ? body : fitBodyToApiVersion(body, this.#target.apiVersion);
  }

  async #headers(call: ProviderCall, accept: string): Promise<Record<string, string>> {
    const auth = this.#target.authorizer.headers(call.signal);
    return {
      ...(auth instanceof Promise ? await auth : auth),
      "content-type": "application/json",
      accept,
      // Azure echoes it as `x-ms-client-request-id`, tying its logs to the gateway's request.
      "x-ms-client-request-id": call.requestId,
    };
  }

  async #complete(path: string, body: OpenAIRequestBody, call: ProviderCall, outputRequired: boolean): Promise<ProviderResponse> {
    const response = await this.#target.client.request({
      origin: this.#target.endpoint.origin,
      path,
      method: "POST",
      headers: await this.#headers(call, "application/json"),
      body: JSON.stringify(body),
      signal: call.signal,
    });
    const { object: parsed, text } = await this.#target.client.readJsonBody(response.body, call.signal);
    if (parsed.error !== undefined && parsed.error !== null && parsed.choices === undefined && parsed.data === undefined) {
      const said = parseAzureErrorBody(JSON.stringify(parsed)).message;
      throw new GatewayError("upstream_error", `Azure OpenAI reported an error: ${said ?? "(no message)"}`);
    }
    return {
      status: response.statusCode,
      headers: relayedHeaders(response.headers, azureRelayedNames),
      body: parsed,
      usage: readResponseUsage(parsed, { outputRequired }),
      text,
    };
  }
}

/** `/openai/deployments/{name}/chat/completions?api-version=…` or `/openai/v1/chat/completions`. */
export function routePath(target: Pick<AzureTarget, "endpoint" | "shape" | "apiVersion">, deploymentName: string, route: string): string {
  const query = target.apiVersion === undefined ? "" : `?api-version=${encodeURIComponent(target.apiVersion)}`;
  if (target.shape === "v1") return `${target.endpoint.basePath}/openai/v1${route}${query}`;
  return `${target.endpoint.basePath}/openai/deployments/${encodeURIComponent(deploymentName)}${route}${query}`;
}

/**
 * The body with the gateway's output cap, as `max_completion_tokens`: Azure's reasoning models
 * refuse `max_tokens`, and `#fit` renames it for API versions that predate it.
 */
function capped(call: ProviderCall): OpenAIRequestBody {
  return withOutputCap(call.body, call.outputCap, "max_completion_tokens");
}

/** A non-streaming body: `stream_options` is refused without `stream: true`. */
function withoutStreaming(body: OpenAIRequestBody): OpenAIRequestBody {
  if (body.stream_options === undefined && body.stream !== true) return body;
  const { stream_options: _streamOptions, ...rest } = body;
  if (rest.stream === true) rest.stream = false;
  return rest as OpenAIRequestBody;
}
