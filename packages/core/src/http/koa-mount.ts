import type { IncomingMessage } from "node:http";
import { pathBelow } from "./base-path.js";
import type { KoaLikeContext } from "./koa-middleware.js";
import type { NodeHandler } from "./node-handler.js";

/** Koa middleware handing the requests under `basePath` to a node:http handler. */
export function koaMount(handler: NodeHandler, basePath: string) {
  return async (context: KoaLikeContext, next: () => Promise<unknown>): Promise<void> => {
    if (pathBelow(context.path, basePath) === null) {
      await next();
      return;
    }
    // A Koa body parser reads the stream and keeps the result on Koa's request, not Node's.
    const request = context.req as IncomingMessage & { body?: unknown };
    if (request.body === undefined && context.request?.body !== undefined) request.body = context.request.body;
    context.respond = false;
    await new Promise<void>((resolve) => {
      context.res.once("close", resolve);
      handler(context.req, context.res);
    });
  };
}
