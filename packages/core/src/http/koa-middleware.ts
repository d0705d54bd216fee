import type { IncomingMessage, ServerResponse } from "node:http";
import type { Gateway } from "../gateway/create-gateway.js";
import { normalizeBasePath } from "./base-path.js";
import { koaMount } from "./koa-mount.js";
import { createNodeHandler } from "./node-handler.js";
import type { NodeHandlerOptions } from "./node-handler.js";

/** The part of a Koa context the middleware touches; typed here so core never imports koa. */
export interface KoaLikeContext {
  req: IncomingMessage;
  res: ServerResponse;
  path: string;
  respond?: boolean;
  /** Koa's request; a body parser (koa-bodyparser, koa-body) leaves what it read in `body`. */
  request?: { body?: unknown };
}

/**
 * Koa middleware serving the gateway under its base path. It hands Koa's raw request and
 * response to the node:http handler and tells Koa not to respond itself (`ctx.respond = false`),
 * so streams keep their backpressure. Other paths go to `next`.
 */
export function createKoaMiddleware(gateway: Gateway, options: NodeHandlerOptions = {}) {
  return koaMount(createNodeHandler(gateway, options), normalizeBasePath(options.basePath ?? "/v1"));
}
