import type { Gateway } from "../gateway/create-gateway.js";
import type { KoaLikeContext } from "../http/koa-middleware.js";
import { normalizeBasePath } from "../http/read-node-body.js";
import { createManagementNodeHandler } from "./management-node-handler.js";
import type { ManagementHandlerOptions } from "./management-node-handler.js";

/**
 * Koa middleware serving the management API under its base path: it hands Koa's raw request and
 * response to the node:http handler and tells Koa not to respond itself. Other paths go to `next`.
 */
export function createManagementKoaMiddleware(gateway: Pick<Gateway, "management">, options: ManagementHandlerOptions = {}) {
  const basePath = normalizeBasePath(options.basePath ?? "/api/ai");
  const handler = createManagementNodeHandler(gateway, options);
  return async (context: KoaLikeContext, next: () => Promise<unknown>): Promise<void> => {
    if (context.path !== basePath && !context.path.startsWith(`${basePath}/`)) {
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
