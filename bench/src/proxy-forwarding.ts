/** What both pass-through proxies (minimal-proxy.ts, dispatch-proxy.ts) do alike: read a body, drop hop-by-hop headers, listen. */
import type { IncomingHttpHeaders, IncomingMessage, Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Pool } from "undici";
import { serveControl } from "./server-control.js";
import { keepAliveTimeoutMs, upstreamModel } from "./workload.js";

const hopByHop = new Set(["connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade", "host", "content-length"]);

/** The headers a proxy forwards: all but the hop-by-hop ones, which belong to each connection. */
export function endToEnd(headers: IncomingHttpHeaders | Record<string, string | string[] | undefined>): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const name in headers) {
    const value = headers[name];
    if (value !== undefined && !hopByHop.has(name)) out[name] = value;
  }
  return out;
}

/** The whole request body. */
export function readBody(request: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)));
    request.on("error", reject);
  });
}

/** Listens on loopback and answers the bench's control channel; stopping closes the server and the pool. */
export async function serveProxy(server: Server, pool: Pool): Promise<void> {
  server.keepAliveTimeout = keepAliveTimeoutMs;
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  serveControl({ origin: `http://127.0.0.1:${port}`, path: "/v1/chat/completions", model: upstreamModel, apiKey: null }, async () => {
    server.closeAllConnections();
    await Promise.all([new Promise((resolve) => server.close(resolve)), pool.destroy()]);
  });
}
