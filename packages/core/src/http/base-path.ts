import type { IncomingMessage } from "node:http";

/** `/api/ai/` → `/api/ai`; `api/ai` → `/api/ai`; `/` stays. */
export function normalizeBasePath(path: string): string {
  const withSlash = path.startsWith("/") ? path : `/${path}`;
  return withSlash.length > 1 && withSlash.endsWith("/") ? withSlash.slice(0, -1) : withSlash;
}

/**
 * The part of `pathname` below a normalized `basePath` (`/chat/completions` below `/v1`), or null
 * when it is outside. A base path of `/` holds every path.
 */
export function pathBelow(pathname: string, basePath: string): string | null {
  if (basePath === "/") return pathname.startsWith("/") ? pathname : null;
  if (pathname === basePath) return "/";
  return pathname.startsWith(basePath) && pathname.charCodeAt(basePath.length) === slash ? pathname.slice(basePath.length) : null;
}

const slash = 0x2f;

/** Where a node:http request goes below `basePath`, with its query string; null when outside it. */
export interface NodeRequestTarget {
  path: string;
  /** What followed `?`, without it; "" when nothing did. */
  query: string;
}

/**
 * A node:http request's place below `basePath`. Express and Connect strip the mount path from
 * `request.url` when a handler is mounted with `app.use("/api/openai/v1", handler)`, so both
 * spellings are accepted: that mount with a base path of `/`, or with the full path (then read
 * from `originalUrl`), as well as a handler mounted at the root with the full path.
 */
export function nodeRequestTarget(request: IncomingMessage & { originalUrl?: unknown }, basePath: string): NodeRequestTarget | null {
  const url = request.url ?? "/";
  const target = targetOf(url, basePath);
  if (target !== null) return target;
  const original = request.originalUrl;
  return typeof original === "string" && original !== url ? targetOf(original, basePath) : null;
}

function targetOf(url: string, basePath: string): NodeRequestTarget | null {
  const queryAt = url.indexOf("?");
  const pathname = queryAt === -1 ? url : url.slice(0, queryAt);
  const path = pathBelow(pathname, basePath);
  return path === null ? null : { path, query: queryAt === -1 ? "" : url.slice(queryAt + 1) };
}
