/**
 * The ways a host mounts the gateway's node:http handler, over real sockets: at the root with the
 * full base path, under a path with `app.use(path, handler)` (Express strips the mount path), at
 * `/`, and behind body parsers that read the request before the gateway does.
 */
import { once } from "node:events";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import express from "express";
import type { Express } from "express";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createNodeHandler } from "@sluice/core";
import { basePath, chatBody, chatModel, expectOpenAIError, rawRequest, startTestHost } from "./test-host.js";
import type { TestHost } from "./test-host.js";

let host: TestHost;
beforeAll(async () => {
  host = await startTestHost();
});
afterAll(() => host.close());

/** Serves `app` on loopback for the length of `use`. */
async function serving<T>(app: Express, use: (origin: string) => Promise<T>): Promise<T> {
  const server = createServer(app);
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  try {
    return await use(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  } finally {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
}

function chat(origin: string, path = `${basePath}/chat/completions`) {
  return rawRequest(`${origin}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${host.keys.carol}` },
    body: JSON.stringify(chatBody({ max_tokens: 4 })),
  });
}

describe("mounting the node:http handler in Express", () => {
  it("under a path, with that path or `/` as the base path", async () => {
    for (const handlerBase of [basePath, "/"]) {
      const app = express();
      app.use(basePath, createNodeHandler(host.sluice.gateway, { basePath: handlerBase }));
      app.use((_request, response) => response.status(404).send("host 404"));
      await serving(app, async (origin) => {
        const reply = await chat(origin);
        expect(reply.status, `base path ${handlerBase}`).toBe(200);
        expect(JSON.parse(reply.text).model).toBe(chatModel);
        const models = await rawRequest(`${origin}${basePath}/models`, { headers: { authorization: `Bearer ${host.keys.carol}` } });
        expect(models.status).toBe(200);
        // Outside the mount, the host answers.
        expect((await rawRequest(`${origin}/elsewhere`)).text).toBe("host 404");
      });
    }
  });

  it("at the root with `/` as the base path: every path is the gateway's", async () => {
    const app = express();
    app.use(createNodeHandler(host.sluice.gateway, { basePath: "/" }));
    await serving(app, async (origin) => {
      expect((await chat(origin, "/chat/completions")).status).toBe(200);
      expectOpenAIError((await rawRequest(`${origin}/nothing-here`)).text);
    });
  });

  it("behind body parsers: what express.json(), express.text() and express.raw() read is used", async () => {
    for (const parser of [express.json(), express.text({ type: "*/*" }), express.raw({ type: "*/*" })]) {
      const app = express();
      app.use(parser);
      app.use(createNodeHandler(host.sluice.gateway, { basePath }));
      await serving(app, async (origin) => {
        const reply = await chat(origin);
        expect(reply.status, reply.text).toBe(200);
        expect(JSON.parse(reply.text).model).toBe(chatModel);
      });
    }
  });

  it("behind a middleware that read the body and kept it: a clear 500 at once, not a request that never ends", async () => {
    const app = express();
    app.use((request, _response, next) => {
      request.on("data", () => undefined);
      request.on("end", () => next());
    });
    app.use(createNodeHandler(host.sluice.gateway, { basePath }));
    await serving(app, async (origin) => {
      const reply = await chat(origin);
      expect(reply.status).toBe(500);
      expect(expectOpenAIError(reply.text).message).toMatch(/body was read before the gateway got it/);
    });
  });
});
