/**
 * Where one endpoint's requests go. SPEC.md configures a custom provider by its full
 * chat-completions URL (`https://host/v1/chat/completions`); the other routes (`/embeddings`,
 * `/completions`, `/models`) sit beside it under the same API root. A base URL ending in `/v1`
 * is accepted too, since that is what most servers' documentation hands out.
 */
export interface UpstreamTarget {
  /** `https://host:port`: one connection pool per origin. */
  readonly origin: string;
  /** The API root's path without a trailing slash (`/v1`, `/openai/v1`). */
  readonly basePath: string;
  /** The query string to repeat on every route (`?api-version=...`), or "". */
  readonly query: string;
  /** The request target of chat completions, query included. */
  readonly chatPath: string;
}

const chatSuffix = "/chat/completions";

/**
 * The target an endpoint URL names, or a message saying why it names none (the settings schema
 * reports it under the field's name).
 */
export function parseUpstreamTarget(endpoint: string): UpstreamTarget | string {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    return "must be an absolute http(s) URL";
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return "must be an absolute http(s) URL";
  // Credentials in a URL would be stored as a plain setting; the API key is a secret.
  if (url.username !== "" || url.password !== "") return "must not contain credentials: set the apiKey secret instead";
  const path = url.pathname.replace(/\/+$/, "");
  let basePath: string;
  if (path.endsWith(chatSuffix)) basePath = path.slice(0, -chatSuffix.length);
  else if (path.endsWith("/v1")) basePath = path;
  else return "must be the chat-completions URL (https://host/v1/chat/completions) or an API base URL ending in /v1";
  const query = url.search;
  return { origin: url.origin, basePath, query, chatPath: `${basePath}${chatSuffix}${query}` };
}

/** The request target of another route under the same API root (`/embeddings`, `/models`). */
export function routePath(target: UpstreamTarget, route: string): string {
  return `${target.basePath}${route}${target.query}`;
}
