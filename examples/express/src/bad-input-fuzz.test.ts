/**
 * Bad input never hurts the gateway: each kind of mistake gets its status and an error body in
 * exactly OpenAI's shape, and then a few thousand seeded random bad requests (garbage bytes,
 * truncated JSON, wrong types, huge numbers, unicode, arrays for objects, odd headers, methods
 * and paths) all get a well-formed 4xx/5xx while well-formed requests keep succeeding.
 */
import { Agent, request as httpRequest } from "node:http";
import { connect } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fakeReplyText } from "@sluice/core/testing";
import { basePath, chatBody, chatModel, embedModel, expectOpenAIError, postJson, rawRequest, startTestHost } from "./test-host.js";
import type { RawReply, TestHost } from "./test-host.js";

const maxBodyBytes = 16 * 1024;

let host: TestHost;
beforeAll(async () => {
  host = await startTestHost({ gateway: { maxBodyBytes } });
});
afterAll(() => host.close());

/** The generation requests the upstream received (model listings aside). */
function upstreamGenerations(): number {
  return host.upstream.requests.filter((record) => record.method === "POST").length;
}

/** A chat POST whose body the caller writes itself (chunked: no Content-Length), and its reply. */
function chunkedPost(apiKey: string): { outgoing: ReturnType<typeof httpRequest>; reply: Promise<RawReply> } {
  const outgoing = httpRequest(`${host.baseUrl}/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${apiKey}` },
    agent: false,
  });
  const reply = new Promise<RawReply>((resolve, reject) => {
    outgoing.on("error", reject);
    outgoing.on("response", (response) => {
      let text = "";
      response.setEncoding("utf8");
      response.on("data", (chunk: string) => (text += chunk));
      response.on("end", () => resolve({ status: response.statusCode ?? 0, headers: response.headers, text }));
    });
  });
  return { outgoing, reply };
}

async function expectError(reply: Promise<RawReply> | RawReply, status: number, fields: { code?: string | null; param?: string | null } = {}) {
  const { status: actual, headers, text } = await reply;
  expect({ status: actual, text }).toMatchObject({ status });
  expect(headers["content-type"]).toMatch(/^application\/json/);
  const error = expectOpenAIError(text);
  expect(error).toMatchObject(fields);
  return error;
}

describe("each kind of bad input, with its status and an OpenAI-shaped body", () => {
  it("401 before anything else: no key, or a bad one, whatever the body", async () => {
    await expectError(rawRequest(`${host.baseUrl}/chat/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: "{oops" }), 401, {
      code: "missing_identity",
      param: null,
    });
    await expectError(postJson(host, "/chat/completions", "{oops", "sk-sluice-not-a-real-key"), 401, { code: "invalid_api_key" });
  });

  it("401 without reading the body: an unknown caller's oversized body, declared or sent slowly, is never read", async () => {
    const big = JSON.stringify(chatBody({ padding: "x".repeat(maxBodyBytes) }));
    const declared = await postJson(host, "/chat/completions", big, "sk-sluice-not-a-real-key");
    await expectError(declared, 401, { code: "invalid_api_key" });
    // The unread body is not left in the socket for a next request.
    expect(declared.headers.connection).toBe("close");

    // A chunked body of which only the first piece is ever sent: the answer comes without it.
    const { outgoing, reply: answered } = chunkedPost("sk-sluice-not-a-real-key");
    outgoing.write(big.slice(0, 100));
    const reply = await answered;
    outgoing.destroy();
    await expectError(reply, 401, { code: "invalid_api_key" });
    expect(upstreamGenerations()).toBe(0);
  });

  it("400 for malformed JSON and for a body that is not an object", async () => {
    await expectError(postJson(host, "/chat/completions", '{"model": "x", "messages": [', host.keys.carol), 400, { code: "invalid_request", param: null });
    await expectError(postJson(host, "/chat/completions", "[1, 2]", host.keys.carol), 400, { code: "invalid_request" });
    await expectError(postJson(host, "/chat/completions", "", host.keys.carol), 400, { code: "invalid_request" });
  });

  it("413 for a body over the configured limit, declared or chunked", async () => {
    const big = JSON.stringify(chatBody({ padding: "x".repeat(maxBodyBytes) }));
    await expectError(postJson(host, "/chat/completions", big, host.keys.carol), 413, { code: "request_too_large" });
    const { outgoing, reply: chunked } = chunkedPost(host.keys.carol);
    // Two writes: no Content-Length, the body comes chunked and the limit is found while reading.
    outgoing.write(big.slice(0, 100));
    outgoing.end(big.slice(100));
    await expectError(chunked, 413, { code: "request_too_large" });
    expect(upstreamGenerations()).toBe(0);
  });

  it("415 for a body that is not sent as JSON", async () => {
    const body = JSON.stringify(chatBody());
    for (const contentType of ["text/plain", "application/x-www-form-urlencoded", "application/jsonx"]) {
      await expectError(postJson(host, "/chat/completions", body, host.keys.carol, { "content-type": contentType }), 415, { code: "unsupported_media_type" });
    }
  });

  it("400 naming the field for missing or mistyped fields", async () => {
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ messages: [{ role: "user", content: "hi" }] }, "model"],
      [{ model: chatModel }, "messages"],
      [chatBody({ messages: [] }), "messages"],
      [chatBody({ messages: [{ role: 5, content: "hi" }] }), "messages[0].role"],
      [chatBody({ max_tokens: "ten" }), "max_tokens"],
      [chatBody({ max_tokens: 1.5 }), "max_tokens"],
      [chatBody({ stream: "yes" }), "stream"],
      [chatBody({ n: 0 }), "n"],
    ];
    for (const [body, param] of cases) {
      await expectError(postJson(host, "/chat/completions", body, host.keys.carol), 400, { code: "invalid_request", param });
    }
    await expectError(postJson(host, "/embeddings", { model: embedModel, input: [] }, host.keys.carol), 400, { param: "input" });
    await expectError(postJson(host, "/embeddings", { model: embedModel, input: "x", encoding_format: "hex" }, host.keys.carol), 400, {
      param: "encoding_format",
    });
  });

  it("400 for stream_options without stream", async () => {
    await expectError(postJson(host, "/chat/completions", chatBody({ stream_options: { include_usage: true } }), host.keys.carol), 400, {
      param: "stream_options",
    });
  });

  it("404 model_not_found for an unknown model, a malformed id, and a malformed model path", async () => {
    for (const model of ["nobody:nothing/model", "gpt-4o", "alice:nothing/fake-chat", "模型:提供者/模型"]) {
      await expectError(postJson(host, "/chat/completions", chatBody({ model }), host.keys.carol), 404, { code: "model_not_found", param: "model" });
    }
    const auth = { authorization: `Bearer ${host.keys.carol}` };
    await expectError(rawRequest(`${host.baseUrl}/models/nobody:nothing%2Fmodel`, { headers: auth }), 404, { code: "model_not_found" });
    await expectError(rawRequest(`${host.baseUrl}/models/%E0%A4%A`, { headers: auth }), 404);
  });

  it("503 for a stopped provider, with nothing charged or sent upstream", async () => {
    const providerId = await host.providerId("alice", "fake");
    await host.sluice.stores.catalog.update(providerId, { status: "stopped" });
    try {
      const before = { generations: upstreamGenerations(), usage: (await host.usage()).totals.requests };
      await expectError(postJson(host, "/chat/completions", chatBody({ stream: true }), host.keys.carol), 503, { code: "provider_unavailable" });
      expect(upstreamGenerations()).toBe(before.generations);
      expect((await host.usage()).totals.requests).toBe(before.usage);
      expect((await host.allocation()).reserved).toBe(0);
    } finally {
      await host.sluice.stores.catalog.update(providerId, { status: "unknown" });
    }
  });

  it("405 with Allow for a wrong method, 404 for an unknown path", async () => {
    const auth = { authorization: `Bearer ${host.keys.carol}` };
    const wrongMethod = await rawRequest(`${host.baseUrl}/chat/completions`, { headers: auth });
    await expectError(wrongMethod, 405, { code: "method_not_allowed" });
    expect(wrongMethod.headers.allow).toBe("POST");
    await expectError(rawRequest(`${host.baseUrl}/models`, { method: "POST", headers: auth }), 405);
    await expectError(rawRequest(`${host.baseUrl}/nope`, { headers: auth }), 404, { code: "not_found" });
    await expectError(rawRequest(`${host.baseUrl}/nope`, { method: "DELETE", headers: auth }), 404, { code: "not_found" });
  });
});

/** mulberry32: a small seeded PRNG, so a failing case can be replayed from its seed and index. */
function prng(seed: number) {
  let state = seed >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) | 0;
    let mixed = Math.imul(state ^ (state >>> 15), 1 | state);
    mixed = (mixed + Math.imul(mixed ^ (mixed >>> 7), 61 | mixed)) ^ mixed;
    return ((mixed ^ (mixed >>> 14)) >>> 0) / 4294967296;
  };
  const int = (below: number) => Math.floor(next() * below);
  const pick = <T>(items: readonly T[]): T => items[int(items.length)]!;
  const chance = (probability: number) => next() < probability;
  return { next, int, pick, chance };
}
type Random = ReturnType<typeof prng>;

const unicode = ["é", "ß", "模型", "🚀", "\u0000", "\u202e", "\ud800", "\uffff", "𝔘𝔫𝔦", "\n", "\"", "\\"];
function randomText(random: Random, length: number): string {
  let text = "";
  for (let index = 0; index < length; index++) text += random.chance(0.3) ? random.pick(unicode) : String.fromCharCode(32 + random.int(95));
  return text;
}

/** The text with lone surrogates replaced, as encodeURIComponent requires. */
function wellFormed(text: string): string {
  return text.replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, "?");
}

const hugeNumbers = [1e308, 2 ** 64, -1, 0, 1.5, 10_000_001, -0.000001, Number.MAX_SAFE_INTEGER + 2];
const wrongTypes = [null, true, false, "", "x", [], {}, [1], [[]], { a: 1 }];

/** Values a validated field must refuse, per field (none of them is valid there). */
const invalidValues: Record<string, readonly unknown[]> = {
  model: [123, null, true, [], {}, "", ["x"], 1e308],
  messages: [[], "hi", 1, null, {}, [1], ["x"], [null], [[]], [{}], [{ role: 5 }], [{ role: null, content: "x" }], [{ content: "no role" }]],
  stream: ["true", 1, 0, [], {}, "🚀"],
  max_tokens: [0, -1, 1.5, 10_000_001, "10", true, [], {}, 1e308, 2 ** 64],
  max_completion_tokens: [0, -5, 2.5, "x", [1], 1e308],
  n: [0, 129, 1.5, "2", [], {}, -1],
};
const invalidEmbeddingValues: Record<string, readonly unknown[]> = {
  model: invalidValues.model!,
  input: [[], 5, null, {}, [[]], [1.5], [[1.5]], [null], true, [{}], [["a"]]],
  encoding_format: ["hex", 1, null, [], "FLOAT"],
  dimensions: [0, -1, 1.5, "16", null, [], 1e308],
};

interface FuzzRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string | Buffer;
  chunked: boolean;
}

function randomModelPath(random: Random): string {
  return random.pick([
    `/models/zz-${encodeURIComponent(wellFormed(randomText(random, random.int(20))))}`,
    "/models/%E0%A4%A",
    "/models/%",
    `/models/${encodeURIComponent("nobody:x/y")}`,
    `/models/zz%2F${random.int(1000)}`,
  ]);
}

/** A bad body for a route: garbage, truncated JSON, a wrong type at a validated field, or not an object. */
function badBody(random: Random, route: "/chat/completions" | "/embeddings" | "/completions"): string | Buffer {
  const valid: Record<string, unknown> =
    route === "/embeddings"
      ? { model: embedModel, input: "hello" }
      : route === "/completions"
        ? { model: chatModel, prompt: "Once upon" }
        : chatBody({ max_tokens: 4 });
  switch (random.int(7)) {
    case 0: {
      // Random bytes that cannot start a JSON object.
      const bytes = Buffer.alloc(1 + random.int(random.chance(0.1) ? maxBodyBytes * 2 : 300));
      for (let index = 0; index < bytes.length; index++) bytes[index] = random.int(256);
      if (bytes[0] === 0x7b || bytes[0]! <= 0x20) bytes[0] = 0x21;
      return bytes;
    }
    case 1: {
      const text = JSON.stringify({ ...valid, note: randomText(random, random.int(40)) });
      return text.slice(0, random.int(text.length - 1));
    }
    case 2:
      return JSON.stringify(random.pick([[], [valid], "body", 42, null, true, [[1, 2]]]));
    case 3: {
      // A wrong value at a field the gateway validates (and never a valid one).
      const fields = route === "/embeddings" ? invalidEmbeddingValues : invalidValues;
      const field = random.pick(Object.keys(fields).filter((name) => route !== "/completions" || name === "model" || name === "max_tokens"));
      const body = { ...valid, [field]: random.pick(fields[field]!) };
      if (field === "stream") delete body.stream_options;
      return JSON.stringify(body);
    }
    case 4: {
      // A required field missing, with unicode and huge numbers riding along.
      const body: Record<string, unknown> = { ...valid, ["ü" + randomText(random, 5)]: random.pick(hugeNumbers) };
      delete body[random.pick(route === "/embeddings" ? ["model", "input"] : route === "/completions" ? ["model", "prompt"] : ["model", "messages"])];
      return JSON.stringify(body);
    }
    case 5: {
      // A model id that names nothing: unicode, huge, or malformed.
      const model = random.pick([randomText(random, 1 + random.int(30)), `zz:${randomText(random, 8)}/x`, "::/", "a:/b", `${"x".repeat(2_000)}:p/m`, "alice:fake/"]);
      return JSON.stringify({ ...valid, model });
    }
    default: {
      if (route !== "/chat/completions") return JSON.stringify({ ...valid, model: random.pick(wrongTypes) });
      // stream_options without stream, or of the wrong type with it; or huge numbers in the caps.
      return JSON.stringify(
        random.chance(0.5)
          ? { ...valid, stream_options: random.pick([{ include_usage: true }, {}, "x", [true]]), ...(random.chance(0.5) ? { stream: false } : {}) }
          : { ...valid, max_tokens: random.pick(hugeNumbers.filter((value) => !(Number.isInteger(value) && value >= 1 && value <= 10_000_000))) },
      );
    }
  }
}

function fuzzRequest(random: Random, apiKey: string): FuzzRequest {
  const headers: Record<string, string> = {};
  const auth = random.int(20);
  if (auth < 16) headers.authorization = `Bearer ${apiKey}`;
  else if (auth === 16) headers.authorization = `Bearer sk-sluice-${randomText(random, 40).replace(/[^\w]/g, "a")}`;
  else if (auth === 17) headers.authorization = random.pick(["Basic YWxpY2U6c2VjcmV0", "Bearer", "bearer  ", `Token ${apiKey}`]);
  else if (auth === 18) headers["api-key"] = random.pick(["", "junk", `${apiKey}x`]);
  else headers.cookie = random.pick(["sluice_demo_session=Y2Fyb2w.forged", "sluice_demo_session=", "a=b; sluice_demo_session=..."]);

  const contentType = random.int(12);
  if (contentType < 9) headers["content-type"] = random.pick(["application/json", "application/json; charset=utf-8", "application/vnd.api+json"]);
  else if (contentType < 11) headers["content-type"] = random.pick(["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/jsonx", "json"]);
  for (let extra = random.int(4); extra > 0; extra--) {
    headers[`x-fuzz-${random.int(1000)}`] = randomText(random, random.int(50)).replace(/[^\x20-\x7e]/g, "?");
  }
  if (random.chance(0.05)) headers["content-encoding"] = "gzip";

  const routes = ["/chat/completions", "/embeddings", "/completions"] as const;
  const shape = random.int(10);
  if (shape < 7) {
    const route = random.pick(routes);
    const suffix = random.pick(["", "", "", "/", "?stream=true", `?q=${random.int(100)}`]);
    return { method: "POST", path: `${route}${suffix}`, headers, body: badBody(random, route), chunked: random.chance(0.2) };
  }
  if (shape === 7) {
    // A wrong method on a real route (HEAD too: its answer has no body).
    const route = random.pick([...routes, "/models"]);
    const method = random.pick(route === "/models" ? ["POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"] : ["GET", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]);
    return { method, path: route, headers, chunked: false, ...(method === "GET" || method === "HEAD" ? {} : { body: badBody(random, "/chat/completions") }) };
  }
  if (shape === 8) return { method: "GET", path: randomModelPath(random), headers, chunked: false };
  const path = random.pick([
    `/${encodeURIComponent(wellFormed(randomText(random, 1 + random.int(20))))}`,
    "//chat/completions",
    "/chat",
    "/chat/completions/extra",
    "/v1/chat/completions",
    "/%ZZ",
    `/embeddings/${random.int(9)}`,
  ]);
  const method = random.pick(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]);
  return { method, path, headers, chunked: false, ...(method === "GET" ? {} : { body: badBody(random, "/chat/completions") }) };
}

function send(agent: Agent, request: FuzzRequest): Promise<RawReply> {
  const chunked = request.body !== undefined && request.chunked && request.body.length > 1;
  // node:http frames a DELETE or OPTIONS body only when told to: say how, as every real client does.
  const framing =
    request.body === undefined ? {} : chunked ? { "transfer-encoding": "chunked" } : { "content-length": String(Buffer.byteLength(request.body)) };
  return new Promise((resolve, reject) => {
    const outgoing = httpRequest(`${host.origin}${basePath}${request.path}`, {
      method: request.method,
      headers: { ...request.headers, ...framing },
      agent,
    });
    outgoing.on("error", reject);
    outgoing.setTimeout(10_000, () => outgoing.destroy(new Error("no answer within 10 s")));
    outgoing.on("response", (response) => {
      const chunks: Buffer[] = [];
      response.on("data", (chunk: Buffer) => chunks.push(chunk));
      response.on("error", reject);
      response.on("end", () => resolve({ status: response.statusCode ?? 0, headers: response.headers, text: Buffer.concat(chunks).toString("utf8") }));
    });
    if (request.body !== undefined && chunked) {
      const half = Math.floor(request.body.length / 2);
      outgoing.write(request.body.slice(0, half));
      outgoing.end(request.body.slice(half));
    } else {
      outgoing.end(request.body);
    }
  });
}

describe("fuzz: thousands of random bad requests", () => {
  it("answers every one with a well-formed 4xx/5xx OpenAI error, while well-formed requests keep succeeding", async () => {
    const seed = 20_260_105;
    const total = 3_000;
    const concurrency = 16;
    const random = prng(seed);
    const requests = Array.from({ length: total }, () => fuzzRequest(random, host.keys.carol));
    const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
    const client = host.client(host.keys.carol);
    const generationsBefore = upstreamGenerations();
    const chargesBefore = (await host.usage()).totals.requests;
    let wellFormedSent = 0;
    const statuses = new Map<number, number>();
    const failures: string[] = [];
    const startedAt = Date.now();

    let next = 0;
    const worker = async () => {
      for (let index = next++; index < total; index = next++) {
        const request = requests[index]!;
        try {
          const reply = await send(agent, request);
          statuses.set(reply.status, (statuses.get(reply.status) ?? 0) + 1);
          expect(reply.status).toBeGreaterThanOrEqual(400);
          expect(reply.status).toBeLessThan(600);
          if (request.method !== "HEAD") expectOpenAIError(reply.text);
        } catch (error) {
          failures.push(`#${index} (seed ${seed}) ${request.method} ${request.path} ${JSON.stringify(request.headers)}: ${(error as Error).message}`);
        }
        if (index % 100 === 0) {
          // A well-formed request in the middle of the storm.
          wellFormedSent++;
          const completion = await client.chat.completions.create({ model: chatModel, messages: [{ role: "user", content: `ping ${index}` }], max_tokens: 3 });
          expect(completion.choices[0]?.message.content).toBe(fakeReplyText(3));
        }
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
    const elapsed = Date.now() - startedAt;
    agent.destroy();

    expect(failures.slice(0, 10)).toEqual([]);
    expect(elapsed).toBeLessThan(20_000);
    // Every status is a client or server error; every kind of refusal showed up.
    expect([...statuses.keys()].every((status) => status >= 400 && status < 600)).toBe(true);
    // And none of them is the gateway failing: bad input is always the client's error.
    expect(statuses.get(500) ?? 0).toBe(0);
    for (const status of [400, 401, 404, 405, 413, 415]) expect(statuses.get(status) ?? 0).toBeGreaterThan(0);

    // Afterwards: well-formed requests, streaming ones included, all succeed.
    const after = await Promise.all(
      Array.from({ length: 10 }, async () => {
        let text = "";
        for await (const chunk of await client.chat.completions.create({ model: chatModel, messages: [{ role: "user", content: "after" }], stream: true })) {
          text += chunk.choices[0]?.delta.content ?? "";
        }
        return text;
      }),
    );
    expect(after).toEqual(Array.from({ length: 10 }, () => fakeReplyText(8)));
    wellFormedSent += 10;

    // Only the well-formed requests reached the upstream or the ledger, and nothing stays reserved.
    expect(upstreamGenerations() - generationsBefore).toBe(wellFormedSent);
    expect((await host.usage()).totals.requests - chargesBefore).toBe(wellFormedSent);
    expect((await host.allocation()).reserved).toBe(0);
  });
});

describe("a refused body on a kept-alive connection", () => {
  it("keeps the connection for the next request after refusing a small body it did not read", async () => {
    const url = new URL(host.baseUrl);
    const socket = connect(Number(url.port), url.hostname);
    const replies: string[] = [];
    let received = Buffer.alloc(0);
    const twoReplies = new Promise<void>((resolve, reject) => {
      socket.on("error", reject);
      socket.on("data", (chunk: Buffer) => {
        received = Buffer.concat([received, chunk]);
        // Each answer here is JSON with a content-length (in bytes): split on the header block and the length.
        for (;;) {
          const headerEnd = received.indexOf("\r\n\r\n");
          if (headerEnd === -1) break;
          const length = Number(/content-length: (\d+)/i.exec(received.subarray(0, headerEnd).toString("latin1"))?.[1]);
          if (received.length < headerEnd + 4 + length) break;
          replies.push(received.subarray(0, headerEnd + 4 + length).toString("utf8"));
          received = received.subarray(headerEnd + 4 + length);
        }
        if (replies.length === 2) resolve();
      });
    });
    const send = (key: string, body: string) =>
      socket.write(
        `POST ${url.pathname}/chat/completions HTTP/1.1\r\nhost: ${url.host}\r\ncontent-type: application/json\r\n` +
          `authorization: Bearer ${key}\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
      );
    // Sent together: the refused body must be skipped, not taken for the start of the next request.
    send("sk-sluice-not-a-real-key", JSON.stringify(chatBody({ max_tokens: 3 })));
    send(host.keys.carol, JSON.stringify(chatBody({ max_tokens: 3 })));
    await twoReplies;
    socket.destroy();
    expect(replies[0]).toMatch(/^HTTP\/1\.1 401 /);
    expect(replies[0]).not.toMatch(/connection: close/i);
    expect(replies[1]).toMatch(/^HTTP\/1\.1 200 /);
    expect(JSON.parse(replies[1]!.slice(replies[1]!.indexOf("\r\n\r\n") + 4))).toMatchObject({ choices: [{ message: { content: fakeReplyText(3) } }] });
  });
});
