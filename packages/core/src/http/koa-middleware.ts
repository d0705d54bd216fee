import type { IncomingMessage, ServerResponse } from "node:http";
import type { Gateway } from "../gateway/create-gateway.js";
import { createNodeHandler } from "./node-handler.js";
import type { NodeHandlerOptions } from "./node-handler.js";

/** The part of a Koa context the middleware touches; typed here so core never imports koa. */
export interface KoaLikeContext {
  req: IncomingMessage;
  res: ServerResponse;
  path: string;
  respond?: boolean;
}

/**
 * Koa middleware serving the gateway under its base path. It hands Koa's raw request and
 * response to the node:http handler and tells Koa not to respond itself (`ctx.respond = false`),
 * so streams keep their backpressure. Other paths go to `next`.
 */
export function createKoaMiddleware(gateway: Gateway, options: NodeHandlerOptions = {}) {
  const basePath = options.basePath ?? "/v1";
  const handler = createNodeHandler(gateway, options);
  return async (context: KoaLikeContext, next: () => Promise<unknown>): Promise<void> => {
    if (context.path !== basePath && !context.path.startsWith(`${basePath.replace(/\/$/, "")}/`)) {
      await next();
      return;
    }
    context.respond = false;
    await new Promise<void>((resolve) => {
      context.res.once("close", resolve);
      handler(context.req, context.res);
    });
  };
}
