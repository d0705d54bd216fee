import { createServer } from "node:http";
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { GatewayError } from "../errors/gateway-error.js";
import { UndiciUpstreamClient } from "./undici-upstream-client.js";
import type { UpstreamRequest } from "./undici-upstream-client.js";

const sse = (...payloads: string[]) => payloads.map((payload) => `data: ${payload}\n\n`).join("");
const chunk = (text: string) => JSON.stringify({ object: "chat.completion.chunk", choices: [{ index: 0, delta: { content: text } }] });

/** A loopback server whose handler the test writes, counting requests and the sockets it saw. */
async function upstream(handler: (request: IncomingMessage, response: ServerResponse) => void) {
  const sockets = new Set<Socket>();
  let requests = 0;
  const server: Server = createServer((request, response) => {
    requests += 1;
    handler(request, response);
  });
  server.on("connection", (socket) => sockets.add(socket));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  servers.push(server);
  return {
    origin,
    get requests() {
      return requests;
    },
    /** Connections the server has accepted so far. */
    get connections() {
      return sockets.size;
    },
  };
}

const servers: Server[] = [];
const clients: UndiciUpstreamClient[] = [];

afterEach(async () => {
  await Promise.all(clients.splice(0).map((client) => client.close()));
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

function client(connections = 4): UndiciUpstreamClient {
  const made = new UndiciUpstreamClient({
    connections,
    connectTimeoutMs: 1_000,
    upstreamName: "the upstream",
    statusError: ({ status, text }) => new GatewayError("upstream_error", `HTTP ${status}: ${text}`),
    transportError: (error, signal) =>
      signal.aborted ? new GatewayError("upstream_error", "The request was cancelled.", { cause: error }) : new GatewayError("upstream_error", "transport", { cause: error }),
  });
  clients.push(made);
  return made;
}

const post = (origin: string, signal = new AbortController().signal): UpstreamRequest => ({
  origin,
  path: "/v1/chat/completions",
  method: "POST",
  headers: { "content-type": "application/json" },
  body: "{}",
  signal,
});

/** A promise the server's handler settles: the test awaits what the upstream saw. */
function signalled<T = void>() {
  let settle!: (value: T) => void;
  const promise = new Promise<T>((resolve) => {
    settle = resolve;
  });
  return { promise, settle };
}

const tick = (ms = 20) => new Promise((resolve) => setTimeout(resolve, ms));

describe("UndiciUpstreamClient over undici's dispatch", () => {
  it("resolves with the status and headers, and reads the body whole as text", async () => {
    const server = await upstream((_request, response) => {
      response.writeHead(200, { "content-type": "application/json", "x-request-id": "up-1" });
      response.write('{"a":');
      setTimeout(() => response.end("1}"), 5);
    });
    const response = await client().request(post(server.origin));
    expect(response.statusCode).toBe(200);
    expect(response.headers["x-request-id"]).toBe("up-1");
    expect(await response.body.text()).toBe('{"a":1}');
  });

  it("rejects a non-2xx answer with the adapter's error, from the body it read", async () => {
    const server = await upstream((_request, response) => {
      response.writeHead(503).end("overloaded");
    });
    await expect(client().request(post(server.origin))).rejects.toThrow("HTTP 503: overloaded");
  });

  it("streams SSE batches as they arrive, and keeps the connection after a clean [DONE]", async () => {
    const server = await upstream((_request, response) => {
      response.writeHead(200, { "content-type": "text/event-stream" });
      response.write(sse(chunk("a")));
      setTimeout(() => response.end(sse(chunk("b"), "[DONE]")), 10);
    });
    const http = client(1);
    for (let round = 0; round < 3; round++) {
      const response = await http.request(post(server.origin));
      const seen: string[][] = [];
      for await (const batch of response.body.batches()) seen.push(batch.events.map((event) => event.data));
      expect(seen).toEqual([[chunk("a")], [chunk("b")]]);
    }
    expect(server.requests).toBe(3);
    expect(server.connections).toBe(1);
  });

  it("cuts the connection when the reader leaves before the end, so the upstream stops", async () => {
    const closed = signalled();
    const server = await upstream((_request, response) => {
      response.once("close", () => closed.settle());
      response.writeHead(200, { "content-type": "text/event-stream" });
      response.write(sse(chunk("a")));
    });
    const response = await client().request(post(server.origin));
    const batches = response.body.batches();
    expect((await batches.next()).done).toBe(false);
    await batches.return();
    await closed.promise;
    expect(server.connections).toBe(1);
  });

  it("ends a stream on an abort with its reason, and the upstream sees the connection close", async () => {
    const closed = signalled();
    const server = await upstream((_request, response) => {
      response.once("close", () => closed.settle());
      response.writeHead(200, { "content-type": "text/event-stream" });
      response.write(sse(chunk("a")));
    });
    const controller = new AbortController();
    const response = await client().request(post(server.origin, controller.signal));
    const batches = response.body.batches();
    await batches.next();
    const waiting = batches.next();
    const reason = new GatewayError("upstream_timeout", "The upstream stopped sending.");
    controller.abort(reason);
    await expect(waiting).rejects.toBe(reason);
    await closed.promise;
  });

  it("never sends a request whose signal aborted while it waited for a connection", async () => {
    const server = await upstream((request, response) => {
      if (request.url === "/slow") setTimeout(() => response.end("done"), 100);
      else response.end("{}");
    });
    const http = client(1);
    const busy = http.request({ ...post(server.origin), path: "/slow" });
    const controller = new AbortController();
    const queued = http.request(post(server.origin, controller.signal));
    await tick(10);
    controller.abort();
    await expect(queued).rejects.toThrow("The request was cancelled.");
    expect(await (await busy).body.text()).toBe("done");
    await tick(20);
    expect(server.requests).toBe(1);
  });

  it("does not send at all when the signal has already aborted", async () => {
    const server = await upstream((_request, response) => response.end("{}"));
    const controller = new AbortController();
    controller.abort();
    await expect(client().request(post(server.origin, controller.signal))).rejects.toThrow("The request was cancelled.");
    await tick();
    expect(server.requests).toBe(0);
  });

  it("turns a connection that dies mid-stream into an upstream_error", async () => {
    const server = await upstream((_request, response) => {
      response.writeHead(200, { "content-type": "text/event-stream" });
      response.write(sse(chunk("a")));
      setTimeout(() => response.socket?.destroy(), 10);
    });
    const response = await client().request(post(server.origin));
    const batches = response.body.batches();
    await batches.next();
    const error: unknown = await batches.next().catch((caught: unknown) => caught);
    expect(GatewayError.is(error) && error.message).toBe("The upstream connection failed mid-stream, so the response is incomplete.");
  });

  it("stops reading the connection while the reader holds more than it has taken (backpressure)", async () => {
    let written = 0;
    let stop = false;
    const piece = Buffer.alloc(64 * 1024, "x");
    const server = await upstream((_request, response) => {
      response.writeHead(200, { "content-type": "text/event-stream" });
      const pump = () => {
        while (!stop && written < 512 * 1024 * 1024) {
          written += piece.length;
          if (!response.write(piece)) return void response.once("drain", pump);
        }
        response.end();
      };
      pump();
    });
    const response = await client().request(post(server.origin));
    // Nobody reads: what the server gets out is bounded by the socket buffers and one high-water mark.
    await tick(300);
    const whileHeld = written;
    await tick(200);
    expect(written).toBe(whileHeld);
    expect(whileHeld).toBeLessThan(64 * 1024 * 1024);
    stop = true;
    response.body.destroy();
  });

  it("cuts the connection when more than it drains follows [DONE]", async () => {
    const closed = signalled();
    const server = await upstream((_request, response) => {
      response.once("close", () => closed.settle());
      response.writeHead(200, { "content-type": "text/event-stream" });
      response.write(sse(chunk("a"), "[DONE]"));
      setTimeout(() => {
        response.write(Buffer.alloc(256 * 1024, "x"));
      }, 20);
    });
    const response = await client().request(post(server.origin));
    const seen: number[] = [];
    for await (const batch of response.body.batches()) seen.push(batch.events.length);
    expect(seen).toEqual([1]);
    // Cut as the excess arrives, well before the drain's time limit (2 s).
    const since = Date.now();
    await closed.promise;
    expect(Date.now() - since).toBeLessThan(1_000);
  });

  it("waits past an informational 1xx for the answer itself", async () => {
    const server = await upstream((_request, response) => {
      response.writeEarlyHints({ link: "</style.css>; rel=preload" });
      response.writeHead(200, { "content-type": "application/json", "x-request-id": "after-103" });
      response.end('{"ok":true}');
    });
    const response = await client().request(post(server.origin));
    expect(response.statusCode).toBe(200);
    expect(response.headers["x-request-id"]).toBe("after-103");
    expect(await response.body.text()).toBe('{"ok":true}');
  });

  it("refuses a request once closed, leaving nothing on the signal to fail later", async () => {
    const server = await upstream((_request, response) => response.end("{}"));
    const http = client();
    await http.close();
    const controller = new AbortController();
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on("unhandledRejection", onUnhandled);
    try {
      await expect(http.request(post(server.origin, controller.signal))).rejects.toThrow();
      controller.abort();
      await tick();
      expect(unhandled).toEqual([]);
    } finally {
      process.off("unhandledRejection", onUnhandled);
    }
  });

  it("ends a read still waiting when the body is destroyed, and the upstream sees the connection close", async () => {
    const closed = signalled();
    const server = await upstream((_request, response) => {
      response.once("close", () => closed.settle());
      response.writeHead(200, { "content-type": "application/json" });
      response.write('{"partial":');
    });
    const response = await client().request(post(server.origin));
    const reading = response.body.text();
    await tick();
    response.body.destroy();
    await expect(reading).rejects.toThrow();
    await closed.promise;
  });

  it("has one reader: a second one is refused rather than left waiting for ever", async () => {
    const server = await upstream((_request, response) => {
      response.writeHead(200, { "content-type": "text/event-stream" });
      response.end(sse(chunk("a"), "[DONE]"));
    });
    const response = await client().request(post(server.origin));
    const batches = response.body.batches();
    await expect(response.body.text()).rejects.toThrow("already being read");
    expect((await batches.next()).done).toBe(false);
  });

  it("reads a bounded prefix and cuts the rest, for error bodies and health probes", async () => {
    const finished = signalled<boolean>();
    const server = await upstream((_request, response) => {
      response.once("close", () => finished.settle(response.writableFinished));
      response.writeHead(200);
      response.end(Buffer.alloc(32 * 1024 * 1024, "y"));
    });
    const response = await client().request(post(server.origin));
    await response.body.dump(1024);
    // Cut before the server got its 32 MiB out.
    expect(await finished.promise).toBe(false);
  });
});
