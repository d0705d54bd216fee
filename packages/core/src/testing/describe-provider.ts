import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { GatewayError } from "../errors/gateway-error.js";
import type { Deployment, OpenAIRequestBody, Provider, ProviderCall, ProviderStreamEvent } from "../provider/provider.js";
import { collectStreamEvents } from "./collect-stream-events.js";

/**
 * A chat request body the harness composes (messages and whatever control its upstream reads),
 * without `model` and `stream`, which the suite sets.
 */
export type ScriptedBody = Record<string, unknown>;

/** Token counts the upstream will report for a scripted answer. */
export interface ScriptedUsage {
  inputTokens: number;
  outputTokens: number;
}

export interface ScriptedCompletion {
  body: ScriptedBody;
  /** `choices[0].message.content` of the upstream's answer. */
  content: string;
  usage: ScriptedUsage;
}

export interface ScriptedStream {
  body: ScriptedBody;
  /**
   * Every event's data payload exactly as the upstream writes it, in order, `[DONE]` left out.
   * The last one must be a usage-only chunk (`choices: []` with `usage`).
   */
  payloads: readonly string[];
  /** What that usage-only chunk reports. */
  usage: ScriptedUsage;
}

/** How the suite steers an upstream it cannot see into: each method is one scripted behaviour. */
export interface ProviderTestUpstream {
  /** A non-streamed chat answer. */
  completion(): ScriptedCompletion;
  /**
   * A streamed chat answer. With `split`, the upstream writes it in small pieces (paced, so they
   * reach the client apart) that cut events mid-line: the payloads must come out the same.
   */
  stream(options?: { split?: boolean }): ScriptedStream;
  /** Answers HTTP `status` with the upstream's error body, before any output. */
  failBeforeOutput(status: number): ScriptedBody;
  /** Streams some output, then drops the connection. */
  failAfterOutput(): ScriptedBody;
  /** Streams output slowly: at least 2 s from the first event to the last, so a test can leave mid-way. */
  slowStream(): ScriptedBody;
  /**
   * True once the upstream sees the client close its most recent request, if that happens within
   * `ms` from the call; false otherwise.
   */
  lastRequestAbortedWithin(ms: number): Promise<boolean>;
}

export interface ProviderUnderTest {
  provider: Provider;
  /** The upstream's name of a model it serves (what `deployments(model)` receives). */
  model: string;
  upstream: ProviderTestUpstream;
  /** Called after each test: close the provider, stop the upstream. */
  close(): Promise<void>;
}

/**
 * How the provider suite gets a provider. `start` is called before every test and returns a
 * Provider bound to a fresh upstream (a fake server on loopback). Give the provider a single
 * upstream connection where it has a pool: the suite then proves that abandoned streams release
 * theirs, because the next request would otherwise wait forever.
 */
export interface ProviderHarness {
  start(): Promise<ProviderUnderTest>;
}

const afterAbortMs = 100;
const nextRequestMs = 3_000;

/**
 * Runs the Provider specification against one adapter. Call it once from a test file:
 * `describeProvider("openai-compatible", harness)`. It drives `deployments(model)[0]`, as the
 * gateway does, and checks what the Deployment contract promises: bodies and usage relayed,
 * stream payloads relayed byte for byte, errors before output rejecting with the right status,
 * errors after output thrown from the iteration, and cancellation reaching the upstream.
 */
export function describeProvider(name: string, harness: ProviderHarness): void {
  describe(`Provider conformance: ${name}`, () => {
    let underTest: ProviderUnderTest | undefined;
    let deployment: Deployment;
    let upstream: ProviderTestUpstream;
    let model: string;
    let calls = 0;

    beforeEach(async () => {
      underTest = await harness.start();
      upstream = underTest.upstream;
      model = underTest.model;
      const deployments = underTest.provider.deployments(model);
      expect(deployments.length).toBeGreaterThan(0);
      deployment = deployments[0]!;
    });

    afterEach(async () => {
      await underTest?.close();
      underTest = undefined;
    });

    function call(body: ScriptedBody, options: { stream?: boolean; signal?: AbortSignal } = {}): ProviderCall {
      calls += 1;
      const request: OpenAIRequestBody = { ...body, model: deployment.model };
      if (options.stream === true) {
        // What the gateway sends upstream for every stream: it always asks for usage.
        request.stream = true;
        request.stream_options = { include_usage: true };
      }
      return { body: request, signal: options.signal ?? new AbortController().signal, requestId: `req_conformance_${calls}` };
    }

    async function rejection(promise: Promise<unknown>): Promise<GatewayError> {
      const error = await promise.then(
        () => {
          throw new Error("expected a rejection, got a result");
        },
        (thrown: unknown) => thrown,
      );
      expect(GatewayError.is(error), `expected a GatewayError, got ${String(error)}`).toBe(true);
      return error as GatewayError;
    }

    /** A complete answer, within a deadline: proves the previous exchange left a connection free. */
    async function expectServes(): Promise<void> {
      const completion = upstream.completion();
      const timeout = AbortSignal.timeout(nextRequestMs);
      const response = await deployment.chatCompletion(call(completion.body, { signal: timeout }));
      expect(response.status).toBeGreaterThanOrEqual(200);
      expect(response.status).toBeLessThan(300);
    }

    it("gives deployments for the model, each naming it", () => {
      for (const each of underTest!.provider.deployments(model)) {
        expect(each.model).toBe(model);
        expect(typeof each.id).toBe("string");
      }
    });

    it("relays a non-streamed answer's body and usage", async () => {
      const completion = upstream.completion();
      const response = await deployment.chatCompletion(call(completion.body));
      expect(response.status).toBe(200);
      const choices = response.body.choices as Array<{ message: { content: unknown } }>;
      expect(choices[0]?.message.content).toBe(completion.content);
      expect(response.usage).toMatchObject({ ...completion.usage, source: "upstream" });
      // The text the gateway may answer with instead of the body must be that very body.
      if (response.text !== undefined) expect(JSON.parse(response.text)).toEqual(response.body);
      for (const [header, value] of Object.entries(response.headers)) {
        expect(header).toBe(header.toLowerCase());
        expect(typeof value).toBe("string");
      }
    });

    it("yields a stream's payloads byte for byte, in order, without [DONE]", async () => {
      const scripted = upstream.stream();
      const stream = await deployment.streamChatCompletion(call(scripted.body, { stream: true }));
      expect(stream.status).toBe(200);
      const events = await collectStreamEvents(stream.batches);
      expect(events.map((event) => event.data)).toEqual([...scripted.payloads]);
      expect(events.some((event) => event.data === "[DONE]")).toBe(false);
    });

    it("reads the same payloads when the upstream's writes cut events apart", async () => {
      const scripted = upstream.stream({ split: true });
      const stream = await deployment.streamChatCompletion(call(scripted.body, { stream: true }));
      const events = await collectStreamEvents(stream.batches);
      expect(events.map((event) => event.data)).toEqual([...scripted.payloads]);
    });

    it("marks the usage-only chunk with its usage", async () => {
      const scripted = upstream.stream();
      const stream = await deployment.streamChatCompletion(call(scripted.body, { stream: true }));
      const events = await collectStreamEvents(stream.batches);
      const last = events.at(-1);
      expect(last?.usageOnly).toBe(true);
      expect(last?.usage).toMatchObject({ ...scripted.usage, source: "upstream" });
      expect(events.slice(0, -1).some((event) => event.usageOnly === true)).toBe(false);
    });

    for (const [upstreamStatus, expected] of [
      [400, 400],
      [429, 429],
      [500, 502],
    ] as const) {
      it(`rejects an upstream ${upstreamStatus} before output with a ${expected}, streamed or not`, async () => {
        const body = upstream.failBeforeOutput(upstreamStatus);
        const complete = await rejection(deployment.chatCompletion(call(body)));
        expect(complete.status).toBe(expected);
        const streamed = await rejection(deployment.streamChatCompletion(call(body, { stream: true })));
        expect(streamed.status).toBe(expected);
        expect(streamed.toJSON().error.message.length).toBeGreaterThan(0);
      });
    }

    it("throws a GatewayError from the iteration when the upstream dies after output", async () => {
      const stream = await deployment.streamChatCompletion(call(upstream.failAfterOutput(), { stream: true }));
      const seen: ProviderStreamEvent[] = [];
      const error = await rejection(
        (async () => {
          for await (const batch of stream.batches) seen.push(...batch.events);
        })(),
      );
      expect(seen.length).toBeGreaterThan(0);
      expect(error.status).toBeGreaterThanOrEqual(500);
    });

    it("cancels the upstream request within 100 ms of an abort", async () => {
      const controller = new AbortController();
      const stream = await deployment.streamChatCompletion(call(upstream.slowStream(), { stream: true, signal: controller.signal }));
      const iterator = stream.batches[Symbol.asyncIterator]();
      expect((await iterator.next()).done).toBe(false);
      const pending = iterator.next();
      controller.abort();
      const aborted = upstream.lastRequestAbortedWithin(afterAbortMs);
      await rejection(pending);
      expect(await aborted).toBe(true);
      await iterator.return?.();
      await expectServes();
    });

    it("releases the connection when the consumer leaves the iteration early", async () => {
      for (let round = 0; round < 3; round++) {
        const stream = await deployment.streamChatCompletion(call(upstream.slowStream(), { stream: true }));
        for await (const batch of stream.batches) {
          expect(batch.events[0]?.data.length).toBeGreaterThan(0);
          break;
        }
        expect(await upstream.lastRequestAbortedWithin(afterAbortMs)).toBe(true);
      }
      await expectServes();
    });

    it("keeps serving after a stream that finished", async () => {
      for (let round = 0; round < 3; round++) {
        const scripted = upstream.stream();
        const stream = await deployment.streamChatCompletion(call(scripted.body, { stream: true }));
        expect((await collectStreamEvents(stream.batches)).length).toBe(scripted.payloads.length);
      }
      await expectServes();
    });
  });
}
