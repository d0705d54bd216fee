import { afterEach, describe, expect, it } from "vitest";
import { GatewayError } from "../errors/gateway-error.js";
import { RequestControl } from "./request-control.js";

const controls: RequestControl[] = [];
afterEach(() => {
  for (const control of controls.splice(0)) control.dispose();
});

function control(limits: { firstByteMs?: number; idleMs?: number; totalMs?: number } = {}, clientSignal = new AbortController().signal) {
  const created = new RequestControl(clientSignal, { firstByteMs: 10_000, idleMs: 10_000, totalMs: 60_000, ...limits });
  controls.push(created);
  return created;
}

function aborted(signal: AbortSignal): Promise<number> {
  const startedAt = performance.now();
  return new Promise((resolve) => signal.addEventListener("abort", () => resolve(performance.now() - startedAt), { once: true }));
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("RequestControl", () => {
  it("aborts a try that misses its first byte, without aborting the request", async () => {
    const request = control({ firstByteMs: 20 });
    const signal = request.startTry();
    const waited = await aborted(signal);
    expect(waited).toBeGreaterThanOrEqual(15);
    expect(request.tryTimedOut).toBe(true);
    expect(request.aborted).toBe(false);
    // The next try starts with a live signal and a fresh limit.
    const next = request.startTry();
    expect(next.aborted).toBe(false);
    expect(request.tryTimedOut).toBe(false);
  });

  it("holds a try without a first-byte limit to the total limit alone (a whole answer)", async () => {
    const request = control({ firstByteMs: 10, totalMs: 60 });
    const signal = request.startTry(false);
    await sleep(30);
    expect(signal.aborted).toBe(false);
    const waited = await aborted(signal);
    expect(waited).toBeGreaterThanOrEqual(15);
    expect(request.reason).toBe("timeout");
    expect(request.tryTimedOut).toBe(false);
  });

  it("does not time out a try that answered", async () => {
    const request = control({ firstByteMs: 15 });
    const signal = request.startTry();
    request.tryEnded();
    await sleep(40);
    expect(signal.aborted).toBe(false);
    expect(request.tryTimedOut).toBe(false);
  });

  it("aborts the running try when the client goes away, and says so", () => {
    const client = new AbortController();
    const request = control({}, client.signal);
    const signal = request.startTry();
    client.abort();
    expect(signal.aborted).toBe(true);
    expect(request.reason).toBe("client-disconnect");
    expect(request.tryTimedOut).toBe(false);
  });

  it("starts aborted for a client already gone", () => {
    const client = new AbortController();
    client.abort();
    const request = control({}, client.signal);
    expect(request.reason).toBe("client-disconnect");
    expect(request.startTry().aborted).toBe(true);
  });

  it("times the whole request out, whatever phase it is in", async () => {
    const request = control({ totalMs: 30 });
    const signal = request.startTry();
    request.tryEnded();
    request.streaming();
    for (let batch = 0; batch < 10 && !signal.aborted; batch++) {
      await sleep(10);
      request.progressed();
    }
    expect(signal.aborted).toBe(true);
    expect(request.reason).toBe("timeout");
    expect(request.failure(new Error("cut"))).toMatchObject({ code: "upstream_timeout", status: 504 });
  });

  it("keeps a stream alive while batches come within the idle limit, and ends it when they stop", async () => {
    const request = control({ idleMs: 40 });
    const signal = request.startTry();
    request.tryEnded();
    request.streaming();
    // Batches every 10 ms for 120 ms: three times the idle limit, never idle for it.
    for (let batch = 0; batch < 12; batch++) {
      await sleep(10);
      request.progressed();
    }
    expect(signal.aborted).toBe(false);
    const waited = await aborted(signal);
    expect(waited).toBeGreaterThanOrEqual(25);
    expect(request.reason).toBe("timeout");
  });

  it("does not count a wait for the client against the idle limit, only against the total", async () => {
    const request = control({ idleMs: 20, totalMs: 150 });
    const signal = request.startTry();
    request.tryEnded();
    request.streaming();
    // A batch went out and the client has not asked for more (its socket is full).
    request.awaitingClient();
    await sleep(60);
    expect(signal.aborted).toBe(false);
    // Once it asks, the idle limit counts again from then.
    request.streaming();
    await sleep(5);
    expect(signal.aborted).toBe(false);
    request.awaitingClient();
    expect(await aborted(signal)).toBeGreaterThan(40);
    expect(request.reason).toBe("timeout");
  });

  it("cancels the running try without giving a reason", () => {
    const request = control();
    const signal = request.startTry();
    request.cancel();
    expect(signal.aborted).toBe(true);
    expect(request.reason).toBeNull();
    expect(request.failure("as is")).toBe("as is");
  });

  it("ends a wait between tries when the request is aborted", async () => {
    const client = new AbortController();
    const request = control({}, client.signal);
    const wait = request.sleep(5_000);
    client.abort();
    await expect(wait).rejects.toBeInstanceOf(GatewayError);
    await expect(request.sleep(1)).rejects.toBeInstanceOf(GatewayError);
  });

  it("waits between tries for as long as asked", async () => {
    const request = control();
    const startedAt = performance.now();
    await request.sleep(20);
    expect(performance.now() - startedAt).toBeGreaterThanOrEqual(15);
  });

  it("waits out limits longer than one Node timer can, in steps rather than an overflowing timer", async () => {
    // Node runs a timer past 2^31 - 1 ms after 1 ms instead, with a TimeoutOverflowWarning.
    const warnings: string[] = [];
    const onWarning = (warning: Error) => warnings.push(warning.name);
    process.on("warning", onWarning);
    try {
      const request = control({ firstByteMs: 2 ** 40, idleMs: 2 ** 40, totalMs: 2 ** 41 });
      const signal = request.startTry();
      await sleep(30);
      expect(signal.aborted).toBe(false);
      expect(request.tryTimedOut).toBe(false);
    } finally {
      process.off("warning", onWarning);
    }
    expect(warnings).not.toContain("TimeoutOverflowWarning");
  });

  it("stops following the client and its limits once disposed", async () => {
    const client = new AbortController();
    const request = new RequestControl(client.signal, { firstByteMs: 10, idleMs: 10, totalMs: 10 });
    const signal = request.startTry();
    request.dispose();
    await sleep(30);
    client.abort();
    expect(signal.aborted).toBe(false);
    expect(request.reason).toBeNull();
  });
});
