import type { Gateway } from "../gateway/create-gateway.js";
import { normalizeBasePath } from "../http/base-path.js";
import { koaMount } from "../http/koa-mount.js";
import { createManagementNodeHandler } from "./management-node-handler.js";
import type { ManagementHandlerOptions } from "./management-node-handler.js";

/**
 * Koa middleware serving the management API under its base path: it hands Koa's raw request and
 * response to the node:http handler and tells Koa not to respond itself. Other paths go to `next`.
 */
export function createManagementKoaMiddleware(gateway: Pick<Gateway, "management">, options: ManagementHandlerOptions = {}) {
  return koaMount(createManagementNodeHandler(gateway, options), normalizeBasePath(options.basePath ?? "/api/ai"));
}
