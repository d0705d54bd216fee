/**
 * The done-when scenarios of issue 6, end to end: the official `openai` client talks to a Sluice
 * gateway (node:http on loopback) whose Azure provider calls the fake Azure data plane.
 */
import { randomBytes } from "node:crypto";
import { createServer } from "node:http";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { TokenCredential } from "@azure/core-auth";
import { applyOrganizationConfig, createEventBus, createGateway, createManualClock, createNodeHandler, createSecretBox } from "@sluice/core";
import type { Clock, Gateway, GatewayOptions, SluiceStores } from "@sluice/core";
import { createMemoryStores } from "@sluice/store-memory";
import OpenAI from "openai";
import { afterEach, describe, expect, it } from "vitest";
import { createAzureOpenAIAdapter } from "./azure-openai-adapter.js";
import { capturePayloads, contentFilterErrorBody, startFakeAzureOpenAI } from "./test-support/fake-azure-openai.js";
import type { FakeAzureDeployment, FakeAzureOpenAI } from "./test-support/fake-azure-openai.js";
import { createFakeTokenCredential } from "./test-support/fake-token-credential.js";
import { resourceGroup, startProvisioningSetup } from "./test-support/provisioning-setup.js";
import type { ProvisioningSetup } from "./test-support/provisioning-setup.js";

interface Running {
  client: OpenAI;
  fake: FakeAzureOpenAI | null;
  gateway: Gateway;
  stores: SluiceStores;
  close(): Promise<void>;
}

const cleanups: Array<() => Promise<void>> = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A gateway on loopback with alice's key; `provider` settings are stored as alice's provider `azure`. */
async function startGateway(input: {
  stores?: SluiceStores;
  fakeDeployments?: FakeAzureDeployment[];
  fakeOptions?: Parameters<typeof startFakeAzureOpenAI>[0];
  settings?: (fake: FakeAzureOpenAI) => Record<string, unknown>;
  credential?: TokenCredential;
  clock?: Clock;
  retry?: GatewayOptions["retry"];
}): Promise<Running> {
  const fake =
    input.settings === undefined
      ? null
      : await startFakeAzureOpenAI({ apiKeys: ["azure-key"], deployments: input.fakeDeployments ?? [{ name: "gpt-4o", model: "gpt-4o-2024-08-06" }], ...input.fakeOptions });
  if (fake !== null) cleanups.push(() => fake.close());
  const events = createEventBus();
  const stores = input.stores ?? createMemoryStores({ secretBox: createSecretBox({ key: randomBytes(32) }), events });
  const applied = await applyOrganizationConfig({
    stores,
    config: {
      users: [{ id: "alice" }],
      groups: [{ id: "team", name: "Team", members: ["alice"] }],
      allocations: [{ id: "alc_team", name: "Team", owner: { type: "group", groupId: "team" }, limit: 1_000_000_000 }],
      keys: [{ userId: "alice", name: "azure-tests", allocationId: "alc_team" }],
    },
  });
  const adapter = createAzureOpenAIAdapter({ credential: input.credential, clock: input.clock });
  if (fake !== null) {
    const settings = adapter.validate!({
      settings: { endpoint: fake.url, deployments: [{ name: "gpt-4o", model: "gpt-4o" }], ...input.settings!(fake) },
      secrets: { apiKey: "azure-key" },
    });
    await stores.catalog.create({ kind: "azure-openai", owner: "alice", name: "azure", status: "provisioned", settings, secrets: { apiKey: "azure-key" } });
  }
  const gateway = createGateway({ stores, adapters: [adapter], events, retry: input.retry ?? { attemptsPerDeployment: 2, baseDelayMs: 10, maxDelayMs: 5_000 } });
  const server: Server = createServer(createNodeHandler(gateway, { basePath: "/v1" }));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  const client = new OpenAI({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey: applied.createdKeys[0]!.secret, maxRetries: 0 });
  cleanups.push(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await gateway.close();
  });
  return { client, fake, gateway, stores, close: async () => undefined };
}

type ChunkRecord = Record<string, unknown> & { choices: Array<Record<string, unknown>> };

/** Extra body fields the fake reads; the gateway forwards unknown fields, the client sends them. */
function withFake<T extends object>(params: T, fake: Record<string, unknown>): T {
  return { ...params, fake } as T;
}

/** The chunk without `model`, which the gateway rewrites to its own model id. */
function withoutModel(chunk: Record<string, unknown>): Record<string, unknown> {
  const { model: _model, ...rest } = chunk;
  return rest;
}

const messages = [{ role: "user" as const, content: "What does a sluice do?" }];

describe("through the gateway, the openai client sees Azure's content filtering as Azure sent it", () => {
  it("streams the prompt_filter_results chunk and every choice's content_filter_results", async () => {
    const { client } = await startGateway({ settings: () => ({}) });
    const stream = await client.chat.completions.create(
      withFake({ model: "alice:azure/gpt-4o", messages, stream: true as const, stream_options: { include_usage: true } }, { replay: "azure-chat-text-include-usage" }),
    );
    const chunks: ChunkRecord[] = [];
    for await (const chunk of stream) chunks.push(chunk as unknown as ChunkRecord);
    const sent = capturePayloads("azure-chat-text-include-usage").map((payload) => JSON.parse(payload) as ChunkRecord);
    expect(chunks.map(withoutModel)).toEqual(sent.map(withoutModel));
    expect(chunks[0]?.choices).toEqual([]);
    expect(chunks[0]?.prompt_filter_results).toEqual(sent[0]?.prompt_filter_results);
    expect(chunks[2]?.choices[0]?.content_filter_results).toEqual({
      hate: { filtered: false, severity: "safe" },
      self_harm: { filtered: false, severity: "safe" },
      sexual: { filtered: false, severity: "safe" },
      violence: { filtered: false, severity: "safe" },
    });
    expect(chunks.at(-1)?.usage).toMatchObject({ prompt_tokens: 15, completion_tokens: 78 });
  });

  it("streams the asynchronous filter's annotations that arrive after the finish chunk", async () => {
    const { client } = await startGateway({ settings: () => ({}) });
    const stream = await client.chat.completions.create(
      withFake({ model: "alice:azure/gpt-4o", messages, stream: true as const }, { replay: "azure-chat-async-filter-after-finish" }),
    );
    const chunks: ChunkRecord[] = [];
    for await (const chunk of stream) chunks.push(chunk as unknown as ChunkRecord);
    const sent = capturePayloads("azure-chat-async-filter-after-finish").map((payload) => JSON.parse(payload) as ChunkRecord);
    // The client did not ask for usage: the gateway drops only the usage chunk.
    expect(chunks.map(withoutModel)).toEqual(sent.slice(0, -1).map(withoutModel));
    const finish = chunks.findIndex((chunk) => chunk.choices[0]?.finish_reason === "stop");
    expect(chunks.slice(finish + 1).map((chunk) => chunk.choices[0]?.content_filter_offsets)).toEqual([
      { check_offset: 22, end_offset: 22, start_offset: 0 },
      { check_offset: 23, end_offset: 23, start_offset: 22 },
    ]);
  });

  it("returns prompt_filter_results and content_filter_results on a complete answer", async () => {
    const { client } = await startGateway({ settings: () => ({}) });
    const completion = (await client.chat.completions.create({ model: "alice:azure/gpt-4o", messages })) as unknown as ChunkRecord;
    expect(completion.model).toBe("alice:azure/gpt-4o");
    expect(completion.prompt_filter_results).toEqual([expect.objectContaining({ prompt_index: 0 })]);
    expect(completion.choices[0]?.content_filter_results).toMatchObject({ violence: { filtered: false, severity: "safe" } });
  });

  for (const spelling of ["innererror", "inner_error"] as const) {
    it(`returns the content-filter 400 with its ${spelling} exactly as Azure sent it, streamed or not`, async () => {
      const { client } = await startGateway({ settings: () => ({}) });
      const sent = (JSON.parse(contentFilterErrorBody(spelling)) as { error: Record<string, unknown> }).error;
      for (const stream of [false, true]) {
        const error = await client.chat.completions
          .create(withFake({ model: "alice:azure/gpt-4o", messages, stream }, { contentFilter: spelling }))
          .then(
            () => null,
            (thrown: unknown) => thrown,
          );
        expect(error).toBeInstanceOf(OpenAI.BadRequestError);
        const apiError = error as InstanceType<typeof OpenAI.BadRequestError>;
        expect(apiError.status).toBe(400);
        expect(apiError.code).toBe("content_filter");
        expect(apiError.param).toBe("prompt");
        // Every key Azure sent, with its value; only `type` is filled in (Azure sends null), as
        // OpenAI's error shape wants a string there.
        expect(apiError.error).toEqual({ ...sent, type: "invalid_request_error" });
      }
    });
  }
});

describe("deployments of one model", () => {
  it("falls back to another deployment of the same model after a 429, honouring retry-after-ms first", async () => {
    const { client, fake } = await startGateway({
      fakeDeployments: [
        { name: "gpt-4o-east", model: "gpt-4o-2024-08-06", behaviour: { status: 429, retryAfterMs: 150 } },
        { name: "gpt-4o-west", model: "gpt-4o-2024-08-06" },
      ],
      settings: () => ({
        deployments: [
          { name: "gpt-4o-east", model: "gpt-4o" },
          { name: "gpt-4o-west", model: "gpt-4o" },
        ],
      }),
    });
    const completion = await client.chat.completions.create({ model: "alice:azure/gpt-4o-east", messages });
    expect(completion.choices[0]?.message.content).toContain("Sluices");
    const tried = fake!.requests.map((request) => [request.deployment, request.status]);
    expect(tried).toEqual([
      ["gpt-4o-east", 429],
      ["gpt-4o-east", 429],
      ["gpt-4o-west", 200],
    ]);
    expect(fake!.requests[1]!.receivedAt - fake!.requests[0]!.receivedAt).toBeGreaterThanOrEqual(140);

    // Streamed too, and a wait longer than the gateway allows moves on at once.
    fake!.requests.length = 0;
    const stream = await client.chat.completions.create(
      withFake({ model: "alice:azure/gpt-4o-east", messages, stream: true as const }, { retryAfterMs: 60_000 }),
    );
    let text = "";
    for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? "";
    expect(text).toBe(" word0 word1 word2 word3");
    expect(fake!.requests.map((request) => request.deployment)).toEqual(["gpt-4o-east", "gpt-4o-west"]);
  });
});

describe("Entra ID under load", () => {
  it("asks the credential for a token once per token lifetime, not per request, under 100 concurrent requests", async () => {
    const clock = createManualClock({ start: Date.now() });
    const credential = createFakeTokenCredential({ clock, lifetimeMs: 3_600_000, delayMs: 25 });
    const { client, fake } = await startGateway({
      credential,
      clock,
      settings: () => ({ auth: "entra" }),
      fakeOptions: { acceptsToken: (token) => credential.isValid(token) },
    });
    const wave = () =>
      Promise.all(
        Array.from({ length: 100 }, (_, index) =>
          index % 2 === 0
            ? client.chat.completions.create({ model: "alice:azure/gpt-4o", messages }).then((completion) => completion.choices.length)
            : client.chat.completions.create({ model: "alice:azure/gpt-4o", messages, stream: true }).then(async (stream) => {
                let chunks = 0;
                for await (const _chunk of stream) chunks += 1;
                return chunks;
              }),
        ),
      );
    expect((await wave()).every((count) => count > 0)).toBe(true);
    expect(credential.calls).toHaveLength(1);

    clock.advance(30 * 60_000);
    await wave();
    expect(credential.calls).toHaveLength(1);

    // Past the refresh point (5 minutes before expiry): one refresh for the whole wave.
    clock.advance(26 * 60_000);
    await wave();
    await wave();
    expect(credential.calls).toHaveLength(2);
    expect(fake!.requests).toHaveLength(400);
    expect(fake!.requests.every((request) => request.status === 200)).toBe(true);
    expect(new Set(fake!.requests.map((request) => request.headers.authorization))).toEqual(
      new Set(["Bearer entra-token-1", "Bearer entra-token-2"]),
    );
  });
});

describe("a managed provider through the gateway", () => {
  let provisioning: ProvisioningSetup | undefined;
  afterEach(async () => {
    await provisioning?.close();
    provisioning = undefined;
  });

  it("goes create -> provisioning -> provisioned -> chat -> delete", async () => {
    provisioning = await startProvisioningSetup();
    const { client, gateway, stores } = await startGateway({ stores: provisioning.stores });
    const record = await provisioning.createManaged({ name: "gpt4o-east" });

    const early = await client.chat.completions.create({ model: "alice:gpt4o-east/gpt-4o", messages }).then(
      () => null,
      (thrown: unknown) => thrown as InstanceType<typeof OpenAI.APIError>,
    );
    expect(early?.status).toBe(503);
    expect(early?.message).toContain("still being provisioned");

    const provisioner = provisioning.provisioner();
    expect((await provisioner.provision(record)).status).toBe("provisioned");
    const models = await client.models.list();
    expect(models.data.map((model) => model.id)).toEqual(["alice:gpt4o-east/gpt-4o"]);
    const completion = await client.chat.completions.create({ model: "alice:gpt4o-east/gpt-4o", messages });
    expect(completion.choices[0]?.message.content).toContain("Sluices");

    expect(await provisioner.deprovision(record.id)).toBe(true);
    gateway.forgetProvider(record.id);
    expect(provisioning.arm.accountNames(resourceGroup)).toEqual([]);
    expect(await stores.catalog.get(record.id)).toBeNull();
    const gone = await client.chat.completions.create({ model: "alice:gpt4o-east/gpt-4o", messages }).then(
      () => null,
      (thrown: unknown) => thrown as InstanceType<typeof OpenAI.APIError>,
    );
    expect(gone?.status).toBe(404);
  });
});
