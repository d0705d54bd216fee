/**
 * Path 2, the floor a Node gateway is measured against (STYLE.md §2): a node:http server and an
 * undici Pool that forward method, path, headers and body to the upstream and pipe the answer
 * back, byte for byte. No auth, no parsing, no metering: only what any correct proxy must do,
 * including closing the upstream request when the client goes away (pipeline destroys both ends).
 */
import { createServer } from "node:http";
import { pipeline } from "node:stream";
import { Pool } from "undici";
import { endToEnd, readBody, serveProxy } from "./proxy-forwarding.js";
import { serverOptions, upstreamConnections, upstreamFromEnvironment } from "./workload.js";

const upstream = upstreamFromEnvironment();
// Same connection limit as the Sluice server's adapter, so both can hold 1,000 open streams.
const pool = new Pool(upstream, { connections: upstreamConnections, headersTimeout: 0, bodyTimeout: 0 });

const server = createServer(serverOptions, (request, response) => {
  readBody(request)
    .then(async (body) => {
      const answer = await pool.request({
        path: request.url ?? "/",
        method: request.method === "POST" ? "POST" : "GET",
        headers: endToEnd(request.headers),
        body: body.length === 0 ? null : body,
      });
      response.writeHead(answer.statusCode, endToEnd(answer.headers));
      pipeline(answer.body, response, () => undefined);
    })
    .catch(() => {
      if (!response.headersSent) response.writeHead(502).end();
      else response.destroy();
    });
});
await serveProxy(server, pool);
