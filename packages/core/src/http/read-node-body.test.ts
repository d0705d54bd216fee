import { Agent, createServer, request as httpRequest } from "node:http";
import type { IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { GatewayError } from "../errors/gateway-error.js";
import { readNodeBody } from "./read-node-body.js";

const servers: Array<ReturnType<typeof createServer>> = [];
afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

/** Sends the first 10 bytes of a declared 100-byte body, then goes away. */
function sendPartOfBodyAndLeave(port: number): void {
  const outgoing = httpRequest({ port, host: "127.0.0.1", method: "POST", agent: false, headers: { "content-length": 100 } });
  outgoing.on("error", () => undefined);
  outgoing.write("x".repeat(10));
  setTimeout(() => outgoing.destroy(), 50);
}

/** A server whose handler hands each request to `onRequest`, on loopback; resolves with its port. */
async function serve(onRequest: (request: IncomingMessage) => void): Promise<number> {
  const server = createServer((request) => onRequest(request));
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return (server.address() as AddressInfo).port;
}

/** A client on one kept-alive connection: `post` sends a body in pieces; `sockets` collects the connections the answers came on. */
function keptAliveClient(port: number) {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const sockets = new Set<unknown>();
  const post = (pieces: string[], headers: Record<string, string | number>) =>
    new Promise<string>((resolve, reject) => {
      const outgoing = httpRequest({ port, host: "127.0.0.1", method: "POST", agent, headers }, (answer) => {
        sockets.add(answer.socket);
        let text = "";
        answer.on("data", (chunk: Buffer) => (text += chunk.toString()));
        answer.on("end", () => resolve(text));
      });
      outgoing.on("error", reject);
      for (const piece of pieces.slice(0, -1)) outgoing.write(piece);
      outgoing.end(pieces.at(-1));
    });
  return { post, sockets, close: () => agent.destroy() };
}

describe("readNodeBody", () => {
  it("reads the whole body, and refuses one past the limit, declared or not", async () => {
    const results: Array<Uint8Array | GatewayError> = [];
    const port = await serve((request) => {
      void readNodeBody(request, 10).then((result) => results.push(result));
    });
    for (const [body, chunked] of [["0123456789", false], ["0123456789ab", false], ["0123456789ab", true]] as const) {
      await new Promise<void>((resolve) => {
        const outgoing = httpRequest({ port, host: "127.0.0.1", method: "POST", agent: false, headers: chunked ? {} : { "content-length": body.length } });
        outgoing.on("error", () => resolve());
        outgoing.on("close", () => resolve());
        if (chunked) outgoing.write(body.slice(0, 5));
        outgoing.end(chunked ? body.slice(5) : body);
        setTimeout(() => outgoing.destroy(), 200);
      });
    }
    expect(Buffer.from(results[0] as Uint8Array).toString()).toBe("0123456789");
    expect((results[1] as GatewayError).code).toBe("request_too_large");
    expect((results[2] as GatewayError).code).toBe("request_too_large");
  });

  it("takes a body that arrived whole before the read began, in one piece or several, and keeps the connection", async () => {
    const results: Array<Uint8Array | GatewayError> = [];
    const server = createServer((request, response) => {
      // As the gateway does while it authenticates: the body is read only later, here once Node
      // has parsed all of it.
      const whenComplete = () => {
        if (!request.complete) return void setImmediate(whenComplete);
        void readNodeBody(request, 10).then((result) => {
          results.push(result);
          response.end(result instanceof GatewayError ? "refused" : "read");
        });
      };
      whenComplete();
    });
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;
    const { post, sockets, close } = keptAliveClient(port);
    try {
      expect(await post(["0123456789"], { "content-length": 10 })).toBe("read");
      expect(await post(["01234", "56789"], {})).toBe("read");
      expect(await post(["012345", "6789ab"], {})).toBe("refused");
      expect(await post([""], { "content-length": 0 })).toBe("read");
    } finally {
      close();
    }
    expect(results.slice(0, 2).map((result) => Buffer.from(result as Uint8Array).toString())).toEqual(["0123456789", "0123456789"]);
    expect((results[2] as GatewayError).code).toBe("request_too_large");
    expect((results[3] as Uint8Array).byteLength).toBe(0);
    // Each body was consumed, so Node kept the one connection for every request.
    expect(sockets.size).toBe(1);
  });

  it("takes a declared body as soon as its bytes are in, without waiting for Node to end the message", async () => {
    const seen: Array<{ completeAtRead: boolean; completeAfter: boolean; body: string }> = [];
    const server = createServer((request, response) => {
      // After one microtask, as when a memory key store has authenticated the caller.
      void Promise.resolve().then(async () => {
        const completeAtRead = request.complete;
        const result = await readNodeBody(request, 100);
        seen.push({ completeAtRead, completeAfter: request.complete, body: Buffer.from(result as Uint8Array).toString() });
        response.end("read");
      });
    });
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;
    const { post, sockets, close } = keptAliveClient(port);
    try {
      for (const body of ['{"model":"a"}', '{"model":"b"}']) expect(await post([body], { "content-length": body.length })).toBe("read");
    } finally {
      close();
    }
    // The message was not yet complete when the read began, and the body came back before it was.
    expect(seen).toEqual([
      { completeAtRead: false, completeAfter: false, body: '{"model":"a"}' },
      { completeAtRead: false, completeAfter: false, body: '{"model":"b"}' },
    ]);
    // Node still finished each message and kept the connection.
    expect(sockets.size).toBe(1);
  });

  it("rejects at once for a client that went away before the read began, rather than waiting for ever", async () => {
    let read: Promise<Uint8Array | GatewayError> | null = null;
    const started = new Promise<void>((resolve) => {
      void serve((request) => {
        // As the gateway does while it authenticates: nothing reads the body until the client is gone.
        request.once("close", () => {
          read = readNodeBody(request, 1_000);
          resolve();
        });
      }).then(sendPartOfBodyAndLeave);
    });
    await started;
    await expect(read!).rejects.toMatchObject({ code: "invalid_request", message: expect.stringContaining("went away") });
  });

  it("rejects when the client goes away in the middle of the body", async () => {
    let read: Promise<Uint8Array | GatewayError> | null = null;
    const reading = new Promise<void>((resolve) => {
      void serve((request) => {
        read = readNodeBody(request, 1_000);
        resolve();
      }).then(sendPartOfBodyAndLeave);
    });
    await reading;
    await expect(read!).rejects.toBeInstanceOf(GatewayError);
  });
});
