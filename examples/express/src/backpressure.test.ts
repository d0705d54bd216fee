/**
 * Backpressure end to end: a client that stops reading right after the response headers, while
 * the upstream offers a stream of a quarter of a gigabyte. The gateway must stop pulling from the
 * upstream instead of buffering: what the upstream manages to write stays bounded by the socket
 * buffers along the way. Then the client leaves, and the gateway settles and keeps serving.
 */
import { connect } from "node:net";
import type { Socket } from "node:net";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fakeReplyText } from "@sluice/core/testing";
import { basePath, chatBody, chatModel, startTestHost } from "./test-host.js";
import type { TestHost } from "./test-host.js";

const offeredChunks = 1_000_000;
const bound = 16 * 1024 * 1024;

let host: TestHost;
beforeAll(async () => {
  host = await startTestHost();
});
afterAll(() => host.close());

/** A full GC, so heap readings compare what is live rather than what is not yet collected. */
function collectGarbage(): void {
  setFlagsFromString("--expose-gc");
  (runInNewContext("gc") as () => void)();
}

function liveBytes(): number {
  collectGarbage();
  const usage = process.memoryUsage();
  return usage.heapUsed + usage.external;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Sends a streaming chat on a raw socket and resolves with the socket, paused, once the response head has arrived. */
async function openStalledStream(on: TestHost = host): Promise<{ socket: Socket; head: string }> {
  // Its own max_tokens: without one, the gateway would hold the upstream to its default cap.
  const body = JSON.stringify(chatBody({ stream: true, max_tokens: offeredChunks }, { chunks: offeredChunks }));
  const { port } = new URL(on.origin);
  const socket = connect(Number(port), "127.0.0.1");
  await new Promise<void>((resolve, reject) => socket.once("connect", resolve).once("error", reject));
  socket.write(
    `POST ${basePath}/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: Bearer ${on.keys.carol}\r\n` +
      `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
  let received = "";
  await new Promise<void>((resolve) => {
    const onData = (chunk: Buffer) => {
      received += chunk.toString("latin1");
      if (!received.includes("\r\n\r\n")) return;
      // Stop reading for good: nothing more leaves the kernel's receive buffer.
      socket.pause();
      socket.off("data", onData);
      resolve();
    };
    socket.on("data", onData);
  });
  return { socket, head: received.slice(0, received.indexOf("\r\n\r\n")) };
}

describe("a client that stops reading", () => {
  it("holds the upstream back instead of buffering its stream, then settles when the client leaves", async () => {
    const client = host.client(host.keys.carol);
    // Warm the path first, so the heap reading below compares data, not freshly compiled code.
    for await (const chunk of await client.chat.completions.create({ model: chatModel, messages: [{ role: "user", content: "Hi" }], stream: true })) {
      expect(chunk.model).toBe(chatModel);
    }
    host.upstream.reset();
    const before = liveBytes();
    const { socket, head } = await openStalledStream();
    expect(head).toMatch(/^HTTP\/1\.1 200 /);
    const requestId = /x-request-id: (\S+)/i.exec(head)?.[1];
    expect(requestId).toBeDefined();
    const record = await host.upstream.waitForRequest(0);

    // Watch the upstream's writes until they have not moved for 750 ms (every buffer on the way
    // is full; a loaded machine may pause the pipeline briefly, never for that long), then hold
    // a second longer. The bound must hold at every look.
    let last = record.bytesWritten;
    let quietSince = Date.now();
    const watchUntil = Date.now() + 15_000;
    while (Date.now() - quietSince < 750 && Date.now() < watchUntil) {
      await sleep(50);
      expect(record.bytesWritten).toBeLessThan(bound);
      if (record.bytesWritten !== last) {
        last = record.bytesWritten;
        quietSince = Date.now();
      }
    }
    const stalledAt = record.bytesWritten;
    await sleep(1_000);
    expect(record.bytesWritten - stalledAt).toBeLessThan(1024 * 1024);
    expect(record.bytesWritten).toBeLessThan(bound);
    expect(record.chunksWritten).toBeGreaterThan(0);
    // What was on offer: far more than the bound.
    expect((record.bytesWritten / record.chunksWritten) * offeredChunks).toBeGreaterThan(200 * 1024 * 1024);
    expect(record.outcome).toBe("pending");
    // Nor did the gateway keep it in memory (the host, the fake and the client share this process).
    expect(liveBytes() - before).toBeLessThan(bound);

    const disconnectedAt = Date.now();
    socket.destroy();
    const abortedAt = await host.upstream.waitForAbort(0, 5_000);
    expect(abortedAt - disconnectedAt).toBeLessThan(1_000);
    const end = await host.waitForEnd(requestId!);
    expect(end.outcome).toBe("client-disconnect");
    expect((await host.allocation()).reserved).toBe(0);
    const charge = await host.sluice.stores.ledger.getCharge(requestId!);
    expect(charge?.outputTokens).toBeGreaterThan(0);
    expect(charge!.outputTokens).toBeLessThanOrEqual(record.chunksWritten);

    // The gateway is fine: the next request is served in full.
    const completion = await client.chat.completions.create({ model: chatModel, messages: [{ role: "user", content: "Again?" }], max_tokens: 4 });
    expect(completion.choices[0]?.message.content).toBe(fakeReplyText(4));
  });

  it("is cut off at the total limit when it never reads again, and its request settles", async () => {
    // Short limits: the stream flows well within the idle limit, but the client never reads.
    const limited = await startTestHost({ gateway: { timeouts: { firstByteMs: 2_000, idleMs: 300, totalMs: 1_500 } } });
    try {
      const { socket, head } = await openStalledStream(limited);
      const requestId = /x-request-id: (\S+)/i.exec(head)?.[1];
      expect(requestId).toBeDefined();
      // The idle limit does not fire while the socket is full: the client is slow, not the upstream.
      await sleep(800);
      expect(limited.ends.has(requestId!)).toBe(false);
      expect((await limited.allocation()).reserved).toBeGreaterThan(0);

      // The total limit does: the upstream is stopped, the reservation settled and the delivered
      // output charged.
      const end = await limited.waitForEnd(requestId!, 5_000);
      expect(end.outcome).toBe("timeout");
      expect(end.errorCode).toBe("upstream_timeout");
      await limited.upstream.waitForAbort(0, 2_000);
      expect((await limited.allocation()).reserved).toBe(0);
      const charge = await limited.sluice.stores.ledger.getCharge(requestId!);
      expect(charge?.outputTokens).toBeGreaterThan(0);

      // And the connection was dropped, as no clean end could reach the client: reading again, it
      // gets what was in flight, then the close, with no end of stream.
      let rest = "";
      socket.on("data", (chunk: Buffer) => {
        rest += chunk.toString("latin1");
      });
      const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
      socket.resume();
      await closed;
      expect(rest.length).toBeGreaterThan(0);
      expect(rest).not.toContain("data: [DONE]");
    } finally {
      await limited.close();
    }
  });
});
