/**
 * Where an Azure OpenAI resource's data plane lives. Settings name it as the resource endpoint
 * ARM reports (`https://{resource}.openai.azure.com/`); a base URL pasted with its API path
 * (`…/openai`, `…/openai/v1/`) is accepted too, and a path prefix is kept for gateways in front
 * of Azure (an API Management instance at `https://apim.example.com/aoai`).
 */
export interface AzureEndpoint {
  /** `https://host:port`: one connection pool per origin. */
  readonly origin: string;
  /** The path before `/openai`, without a trailing slash ("" for a resource endpoint). */
  readonly basePath: string;
  /** The host, for deployment ids and messages. */
  readonly host: string;
}

/** The endpoint a URL names, or a message saying why it names none. */
export function parseAzureEndpoint(endpoint: string): AzureEndpoint | string {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    return "must be an absolute https URL, such as https://my-resource.openai.azure.com";
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    return "must be an absolute https URL, such as https://my-resource.openai.azure.com";
  }
  // Credentials in a URL would be stored as a plain setting; the key is the apiKey secret.
  if (url.username !== "" || url.password !== "") return "must not contain credentials: set the apiKey secret instead";
  if (url.search !== "" || url.hash !== "") return "must not contain a query or fragment: set apiVersion instead";
  const basePath = url.pathname.replace(/\/+$/, "").replace(/\/openai(?:\/v1)?$/, "");
  return { origin: url.origin, basePath, host: url.host };
}

/** The endpoint as settings store it: origin and prefix, no trailing slash. */
export function formatAzureEndpoint(endpoint: AzureEndpoint): string {
  return `${endpoint.origin}${endpoint.basePath}`;
}
