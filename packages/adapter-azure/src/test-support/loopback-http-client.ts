/**
 * How the Azure SDK reaches the fake ARM server: a custom `httpClient` (a documented option of
 * every Azure SDK client, `CommonClientOptions.httpClient`) that sends each request to a loopback
 * address instead of the host in its URL. The SDK keeps using its real https URLs, so its
 * bearer-token policy (which refuses non-https URLs) and every other policy of the pipeline run
 * unchanged; only the last hop, the socket, is redirected. A URL whose origin has no route here is
 * refused, so no test can reach Azure. Not exported from the package.
 */
import type { CognitiveServicesManagementClientOptionalParams } from "@azure/arm-cognitiveservices";
import { request as undiciRequest } from "undici";

type HttpClient = NonNullable<CognitiveServicesManagementClientOptionalParams["httpClient"]>;
type PipelineRequest = Parameters<HttpClient["sendRequest"]>[0];
type PipelineResponse = Awaited<ReturnType<HttpClient["sendRequest"]>>;
type HttpHeaders = PipelineResponse["headers"];

class SimpleHeaders implements HttpHeaders {
  readonly #values = new Map<string, { name: string; value: string }>();

  constructor(raw: Record<string, string | string[] | undefined> = {}) {
    for (const [name, value] of Object.entries(raw)) {
      if (value !== undefined) this.set(name, Array.isArray(value) ? value.join(", ") : value);
    }
  }

  get(name: string): string | undefined {
    return this.#values.get(name.toLowerCase())?.value;
  }

  has(name: string): boolean {
    return this.#values.has(name.toLowerCase());
  }

  set(name: string, value: string | number | boolean): void {
    this.#values.set(name.toLowerCase(), { name, value: String(value) });
  }

  delete(name: string): void {
    this.#values.delete(name.toLowerCase());
  }

  toJSON(options?: { preserveCase?: boolean }): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [key, entry] of this.#values) out[options?.preserveCase === true ? entry.name : key] = entry.value;
    return out;
  }

  *[Symbol.iterator](): Iterator<[string, string]> {
    for (const [key, entry] of this.#values) yield [key, entry.value];
  }
}

/** Routes requests for each https origin (`https://management.azure.com`) to a loopback base URL. */
export function createLoopbackHttpClient(routes: Readonly<Record<string, string>>): HttpClient {
  return {
    async sendRequest(request: PipelineRequest): Promise<PipelineResponse> {
      const url = new URL(request.url);
      const target = routes[url.origin];
      if (target === undefined) throw new Error(`No loopback route for ${url.origin}: tests never reach Azure.`);
      const body = request.body;
      if (body !== undefined && body !== null && typeof body !== "string") throw new Error("The loopback client sends string bodies only.");
      const response = await undiciRequest(`${target}${url.pathname}${url.search}`, {
        method: request.method,
        headers: request.headers.toJSON(),
        body: body ?? undefined,
        signal: request.abortSignal as AbortSignal | undefined,
      });
      const text = await response.body.text();
      return { request, status: response.statusCode, headers: new SimpleHeaders(response.headers), bodyAsText: text };
    },
  };
}
