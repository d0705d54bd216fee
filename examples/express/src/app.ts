import express from "express";
import { createManagementNodeHandler, createNodeHandler } from "@sluice/core";
import { createDemoLogin, startSluice } from "@sluice/example-host-kit";
import type { HostConfig, RunningSluice, SluiceHostOptions } from "@sluice/example-host-kit";

export interface ExpressHost {
  app: express.Express;
  sluice: RunningSluice;
}

/**
 * The example host: Express with its own routes, and Sluice's OpenAI-compatible API mounted at
 * the config's base path. The node:http handler is Express middleware as it is; Express only
 * hands it the request.
 */
export async function createExpressHost(config: HostConfig, options: SluiceHostOptions = {}): Promise<ExpressHost> {
  const login = createDemoLogin();
  const sluice = await startSluice({ ...options, config, identify: (input) => login.identify(input) });
  const app = express();

  // The host's own login (a demo): its session cookie lets the host's pages call the gateway
  // without an AI key, metered like any other request.
  app.post("/login", express.json(), async (request, response) => {
    const userId = typeof request.body?.userId === "string" ? request.body.userId : "";
    if (!(await sluice.stores.permissions.getUser(userId))) {
      response.status(401).json({ error: "unknown user" });
      return;
    }
    response.setHeader("set-cookie", login.sessionCookie(userId)).json({ userId });
  });

  app.use(createNodeHandler(sluice.gateway, { basePath: config.basePath }));
  // The management API (providers, sharing, keys, allocations, usage) acts as the logged-in user.
  app.use(createManagementNodeHandler(sluice.gateway, { basePath: config.managementPath }));
  return { app, sluice };
}
