import type { IncomingMessage, ServerResponse } from "node:http";
import { GatewayError } from "../errors/gateway-error.js";
import { errorReply } from "../gateway/create-gateway.js";
import type { Gateway } from "../gateway/create-gateway.js";
import type { JsonReply } from "../gateway/gateway-request.js";
import type { NodeHandler } from "../http/node-handler.js";
import { nodeRequestTarget, normalizeBasePath } from "../http/base-path.js";
import { nodeHeaders, readNodeBodyOrThrow, unreadBodyClosesConnection } from "../http/read-node-body.js";
import { handleManagementRequest } from "./management-routes.js";

export interface ManagementHandlerOptions {
  /** Where the management API is mounted, e.g. `/api/ai`. Default `/api/ai`. */
  basePath?: string;
  /** Largest request body accepted, in bytes (413 beyond). Default 1 MiB. */
  maxBodyBytes?: number;
}

/** Host names and IP literals with a port: anything else in a Host header stays out of snippets. */
const hostPattern = /^[A-Za-z0-9.-]+(?::\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](?::\d{1,5})?$/;

/**
 * The management API as a node:http request handler, mounted beside the OpenAI-compatible one.
 * With `next`, requests outside the base path go to it (Express, Connect); without, they get a
 * 404. The caller is the user the gateway's `identify` hook finds (the host's login session).
 */
export function createManagementNodeHandler(gateway: Pick<Gateway, "management">, options: ManagementHandlerOptions = {}): NodeHandler {
  const basePath = normalizeBasePath(options.basePath ?? "/api/ai");
  const maxBodyBytes = options.maxBodyBytes ?? 1024 * 1024;
  return (request, response, next) => {
    const target = nodeRequestTarget(request, basePath);
    if (target === null) {
      if (next) return next();
      const url = request.url ?? "/";
      return writeJson(response, errorReply(new GatewayError("not_found", `Invalid URL (${request.method} ${url.split("?")[0]}).`)));
    }
    serve(gateway, request, response, {
      path: target.path,
      query: new URLSearchParams(target.query),
      maxBodyBytes,
    }).catch((error: unknown) => {
      if (!response.headersSent) writeJson(response, errorReply(GatewayError.from(error)));
      else response.destroy();
    });
  };
}

async function serve(
  gateway: Pick<Gateway, "management">,
  request: IncomingMessage,
  response: ServerResponse,
  target: { path: string; query: URLSearchParams; maxBodyBytes: number },
): Promise<void> {
  let bodyRead = false;
  const reply = await handleManagementRequest(gateway.management, {
    method: request.method ?? "GET",
    path: target.path,
    query: target.query,
    headers: nodeHeaders(request),
    readBody() {
      bodyRead = true;
      return readNodeBodyOrThrow(request, target.maxBodyBytes);
    },
    raw: request,
    origin: requestOrigin(request),
  });
  // The rest of an oversized body was not read: close rather than leave it in the socket.
  if (reply.status === 413 || (!bodyRead && unreadBodyClosesConnection(request, target.maxBodyBytes))) reply.headers.connection = "close";
  writeJson(response, reply);
}

function requestOrigin(request: IncomingMessage): string | null {
  const host = request.headers.host;
  if (host === undefined || !hostPattern.test(host)) return null;
  const encrypted = (request.socket as { encrypted?: boolean }).encrypted === true;
  return `${encrypted ? "https" : "http"}://${host}`;
}

function writeJson(response: ServerResponse, reply: JsonReply): void {
  if (response.destroyed) return;
  response.writeHead(reply.status, { ...reply.headers, "content-length": Buffer.byteLength(reply.body) });
  response.end(reply.body);
}
