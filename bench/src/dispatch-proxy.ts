/**
 * A diagnostic path, not one of the three the targets are judged on: the minimal proxy written on
 * undici's dispatch API (a handler undici calls with the status, each piece of the body and the
 * end) instead of `request()` and `pipeline()`. Sluice's upstream call is written this way
 * (`UpstreamExchange`), so `BENCH_BASELINE=dispatch-proxy` in focus-cell measures the gateway
 * against a floor that has the same advantage, and says how much of Sluice's standing against
 * the minimal proxy comes from it. Forwarding, backpressure and the upstream's cancellation
 * when the client leaves are as in minimal-proxy.ts.
 */
import { createServer } from "node:http";
import { Pool } from "undici";
import type { Dispatcher } from "undici";
import { endToEnd, readBody, serveProxy } from "./proxy-forwarding.js";
import { serverOptions, upstreamConnections, upstreamFromEnvironment } from "./workload.js";

const upstream = upstreamFromEnvironment();
const pool = new Pool(upstream, { connections: upstreamConnections, headersTimeout: 0, bodyTimeout: 0 });

const server = createServer(serverOptions, (request, response) => {
  readBody(request)
    .then((body) => {
      const handler: Dispatcher.DispatchHandler = {
        onRequestStart() {},
        onResponseStart(controller, statusCode, headers) {
          response.writeHead(statusCode, endToEnd(headers));
          response.on("drain", () => controller.resume());
          response.on("close", () => {
            if (!response.writableFinished) controller.abort(new Error("The client went away."));
          });
        },
        onResponseData(controller, chunk) {
          if (!response.write(chunk)) controller.pause();
        },
        onResponseEnd() {
          response.end();
        },
        onResponseError() {
          if (!response.headersSent) response.writeHead(502).end();
          else response.destroy();
        },
      };
      pool.dispatch(
        {
          origin: upstream,
          path: request.url ?? "/",
          method: request.method === "POST" ? "POST" : "GET",
          headers: endToEnd(request.headers),
          body: body.length === 0 ? null : body,
        },
        handler,
      );
    })
    .catch(() => {
      if (!response.headersSent) response.writeHead(502).end();
      else response.destroy();
    });
});
await serveProxy(server, pool);
