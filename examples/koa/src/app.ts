import Koa from "koa";
import { createKoaMiddleware, createManagementKoaMiddleware } from "@sluice/core";
import { createDemoLogin, startSluice } from "@sluice/example-host-kit";
import type { HostConfig, RunningSluice, SluiceHostOptions } from "@sluice/example-host-kit";

export interface KoaHost {
  app: Koa;
  sluice: RunningSluice;
}

/**
 * The example host on Koa: its own routes, and Sluice mounted with `createKoaMiddleware`, which
 * gives the node:http handler Koa's raw request and response.
 */
export async function createKoaHost(config: HostConfig, options: SluiceHostOptions = {}): Promise<KoaHost> {
  const login = createDemoLogin();
  const sluice = await startSluice({ ...options, config, identify: (input) => login.identify(input) });
  const app = new Koa();

  app.use(createKoaMiddleware(sluice.gateway, { basePath: config.basePath }));
  // The management API (providers, sharing, keys, allocations, usage) acts as the logged-in user.
  app.use(createManagementKoaMiddleware(sluice.gateway, { basePath: config.managementPath }));

  // The host's own login (a demo), as in the Express example.
  app.use(async (context, next) => {
    if (context.method !== "POST" || context.path !== "/login") return next();
    let userId = "";
    try {
      const chunks: Buffer[] = [];
      for await (const chunk of context.req) chunks.push(chunk as Buffer);
      const body: unknown = JSON.parse(Buffer.concat(chunks).toString("utf8"));
      if (typeof body === "object" && body !== null && typeof (body as { userId?: unknown }).userId === "string") {
        userId = (body as { userId: string }).userId;
      }
    } catch {
      userId = "";
    }
    if (!(await sluice.stores.permissions.getUser(userId))) {
      context.status = 401;
      context.body = { error: "unknown user" };
      return;
    }
    context.set("set-cookie", login.sessionCookie(userId));
    context.body = { userId };
  });
  return { app, sluice };
}
