import { randomBytes } from "node:crypto";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createManualClock } from "../clock/clock.js";
import { createEventBus } from "../events/sluice-events.js";
import type { SluiceEventName, SluiceEvents } from "../events/sluice-events.js";
import type { ProviderCatalog } from "../provider/provider-catalog.js";
import type { CreateProviderInput, ProviderRecord, UpdateProviderInput } from "../provider/provider-record.js";
import { createSecretBox } from "../provider/secret-box.js";
import type { SecretBox } from "../provider/secret-box.js";
import type { StoreHarness, StoreHarnessContext, StoreUnderTest } from "./store-harness.js";
import { expectGatewayError, expectGatewayErrorValue, unchecked } from "./expect-gateway-error.js";

const alice = "alice";
const bob = "bob";

// Distinctive values, so finding one in a dump or a payload can only mean a leak.
const apiKeyValue = "sk-conformance-api-key-3f9a1c7e5d2b";
const organizationValue = "org-conformance-secret-8b4e2a6c0f1d";
const rotatedApiKeyValue = "sk-conformance-rotated-key-1d6f0b3a9e7c";
const allSecretValues = [apiKeyValue, organizationValue, rotatedApiKeyValue];

const missingId = "prv_conformance_missing";

interface SealCall {
  context: string;
  sealed: string;
}

type EventPayload<Name extends SluiceEventName> = SluiceEvents[Name][0];

function providerInput(overrides: Partial<CreateProviderInput> = {}): CreateProviderInput {
  return { kind: "openai-compatible", owner: alice, name: "vllm-llama", ...overrides };
}

/** A provider with everything set, secrets included. */
function fullProviderInput(overrides: Partial<CreateProviderInput> = {}): CreateProviderInput {
  return providerInput({
    description: "Llama 3 on the lab's vLLM server",
    tags: ["gpu", "lab"],
    status: "reachable",
    statusReason: "health check passed",
    settings: { endpoint: "https://vllm.example.test/v1/chat/completions", models: ["meta-llama-3-8b"] },
    secrets: { organization: organizationValue, apiKey: apiKeyValue },
    ...overrides,
  });
}

/** `owner/name` of each record, for order assertions that read at a glance. */
function labels(records: readonly ProviderRecord[]): string[] {
  return records.map((record) => `${record.owner}/${record.name}`);
}

/**
 * Runs the ProviderCatalog specification against one implementation. Call it once from a test
 * file: `describeProviderCatalog("memory", memoryHarness)`.
 */
export function describeProviderCatalog(name: string, harness: StoreHarness<ProviderCatalog>): void {
  describe(`ProviderCatalog conformance: ${name}`, () => {
    let context: StoreHarnessContext;
    let underTest: StoreUnderTest<ProviderCatalog> | undefined;
    let catalog: ProviderCatalog;
    let sealCalls: SealCall[];

    beforeEach(async () => {
      sealCalls = [];
      context = {
        clock: createManualClock(),
        events: createEventBus(),
        // Still the real box; recording its seals lets the suite check each secret's context
        // without knowing how the implementation lays out its storage.
        secretBox: recordingSeals(createSecretBox({ key: randomBytes(32) }), sealCalls),
      };
      underTest = await harness.create(context);
      catalog = underTest.store;
    });

    afterEach(async () => {
      await underTest?.close?.();
      underTest = undefined;
    });

    function inspect(): Promise<string> {
      if (underTest === undefined) throw new Error("no store under test");
      return underTest.inspect();
    }

    function recordEvents<Name extends SluiceEventName>(eventName: Name): Array<EventPayload<Name>> {
      const seen: Array<EventPayload<Name>> = [];
      context.events.on(eventName, (...args) => {
        seen.push(args[0]);
      });
      return seen;
    }

    function recordAllProviderEvents(): Array<{ name: SluiceEventName; payload: unknown }> {
      const seen: Array<{ name: SluiceEventName; payload: unknown }> = [];
      const names = ["provider-create", "provider-update", "provider-status-change", "provider-delete"] as const;
      for (const eventName of names) {
        context.events.on(eventName, (payload: unknown) => {
          seen.push({ name: eventName, payload });
        });
      }
      return seen;
    }

    function expectNoSecretValueIn(value: unknown): void {
      const text = JSON.stringify(value);
      for (const secret of allSecretValues) expect(text).not.toContain(secret);
    }

    describe("create", () => {
      it("creates a provider with defaults: unknown status, no tags, no settings, no description, version 1", async () => {
        const record = await catalog.create(providerInput());

        expect(record).toEqual({
          id: expect.stringMatching(/^prv_/),
          kind: "openai-compatible",
          owner: alice,
          name: "vllm-llama",
          description: null,
          tags: [],
          status: "unknown",
          statusReason: null,
          settings: {},
          secretNames: [],
          createdAt: context.clock.now(),
          updatedAt: context.clock.now(),
          version: 1,
        });
        expect(await catalog.get(record.id)).toEqual(record);
      });

      it("stores everything it is given, with the secret names sorted", async () => {
        const record = await catalog.create(fullProviderInput({ kind: "azure-openai" }));

        expect(record).toEqual({
          id: expect.stringMatching(/^prv_/),
          kind: "azure-openai",
          owner: alice,
          name: "vllm-llama",
          description: "Llama 3 on the lab's vLLM server",
          tags: ["gpu", "lab"],
          status: "reachable",
          statusReason: "health check passed",
          settings: { endpoint: "https://vllm.example.test/v1/chat/completions", models: ["meta-llama-3-8b"] },
          secretNames: ["apiKey", "organization"],
          createdAt: context.clock.now(),
          updatedAt: context.clock.now(),
          version: 1,
        });
        expect(await catalog.get(record.id)).toEqual(record);
      });

      it("honours a given id", async () => {
        const record = await catalog.create(providerInput({ id: "tunnel-7f3a", kind: "openai-tunnel" }));

        expect(record.id).toBe("tunnel-7f3a");
        expect(await catalog.get("tunnel-7f3a")).toEqual(record);
      });

      it("generates a distinct id for each provider", async () => {
        const first = await catalog.create(providerInput({ name: "first" }));
        const second = await catalog.create(providerInput({ name: "second" }));

        expect(first.id).not.toBe(second.id);
      });

      it("publishes provider-create with the new record", async () => {
        const created = recordEvents("provider-create");

        const record = await catalog.create(fullProviderInput());

        expect(created).toEqual([record]);
      });

      it("refuses an id that is already taken with a 409", async () => {
        const existing = await catalog.create(providerInput({ id: "prv_conformance_taken", name: "first" }));

        await expectGatewayError(
          catalog.create(providerInput({ id: "prv_conformance_taken", owner: bob, name: "second" })),
          "conflict",
        );

        expect(await catalog.get(existing.id)).toEqual(existing);
        expect(labels(await catalog.list())).toEqual(["alice/first"]);
      });

      it("refuses a second provider of the same name for one owner with a 409", async () => {
        const existing = await catalog.create(providerInput());
        const created = recordEvents("provider-create");

        await expectGatewayError(catalog.create(providerInput({ kind: "azure-openai" })), "conflict");

        expect(await catalog.list()).toEqual([existing]);
        expect(created).toEqual([]);
      });

      it("allows the same name under another owner", async () => {
        const mine = await catalog.create(providerInput({ owner: alice }));
        const theirs = await catalog.create(providerInput({ owner: bob }));

        expect(theirs.id).not.toBe(mine.id);
        expect(labels(await catalog.list())).toEqual(["alice/vllm-llama", "bob/vllm-llama"]);
      });

      it("compares names case-sensitively", async () => {
        await catalog.create(providerInput({ name: "vllm-llama" }));
        await catalog.create(providerInput({ name: "VLLM-llama" }));

        expect(await catalog.list({ owner: alice })).toHaveLength(2);
      });

      it("lets exactly one of two concurrent creates of one name succeed", async () => {
        const outcomes = await Promise.allSettled([
          catalog.create(providerInput({ description: "first" })),
          catalog.create(providerInput({ description: "second" })),
        ]);

        expectExactlyOneCreated(outcomes);
        expect(await catalog.list()).toHaveLength(1);
      });

      it("lets exactly one of many concurrent creates of one name succeed", async () => {
        const outcomes = await Promise.allSettled(
          Array.from({ length: 20 }, (_, index) => catalog.create(providerInput({ description: `attempt ${index}` }))),
        );

        expectExactlyOneCreated(outcomes);
        expect(await catalog.list()).toHaveLength(1);
      });
    });

    describe("reading", () => {
      it("returns null from get and findByName for an unknown provider", async () => {
        await catalog.create(providerInput());

        expect(await catalog.get(missingId)).toBeNull();
        expect(await catalog.findByName({ owner: alice, name: "other-name" })).toBeNull();
        expect(await catalog.findByName({ owner: bob, name: "vllm-llama" })).toBeNull();
      });

      it("finds a provider by its owner and exact name", async () => {
        const mine = await catalog.create(providerInput({ owner: alice }));
        const theirs = await catalog.create(providerInput({ owner: bob }));

        expect(await catalog.findByName({ owner: alice, name: "vllm-llama" })).toEqual(mine);
        expect(await catalog.findByName({ owner: bob, name: "vllm-llama" })).toEqual(theirs);
        expect(await catalog.findByName({ owner: alice, name: "VLLM-LLAMA" })).toBeNull();
      });

      it("lists nothing from an empty catalog", async () => {
        expect(await catalog.list()).toEqual([]);
        expect(await catalog.list({ owner: alice })).toEqual([]);
      });

      it("lists every provider ordered by owner, then name", async () => {
        await catalog.create(providerInput({ owner: bob, name: "beta" }));
        await catalog.create(providerInput({ owner: alice, name: "gamma" }));
        await catalog.create(providerInput({ owner: bob, name: "alpha" }));
        await catalog.create(providerInput({ owner: alice, name: "alpha" }));
        await catalog.create(providerInput({ owner: alice, name: "beta" }));

        expect(labels(await catalog.list())).toEqual(["alice/alpha", "alice/beta", "alice/gamma", "bob/alpha", "bob/beta"]);
      });

      describe("filters", () => {
        let aliceGamma: ProviderRecord;
        let bobAlpha: ProviderRecord;

        beforeEach(async () => {
          await catalog.create(providerInput({ owner: alice, name: "alpha", kind: "azure-openai" }));
          await catalog.create(providerInput({ owner: alice, name: "beta", kind: "openai-compatible" }));
          aliceGamma = await catalog.create(providerInput({ owner: alice, name: "gamma", kind: "openai-tunnel" }));
          bobAlpha = await catalog.create(providerInput({ owner: bob, name: "alpha", kind: "openai-compatible" }));
        });

        it("filters by owner", async () => {
          expect(labels(await catalog.list({ owner: alice }))).toEqual(["alice/alpha", "alice/beta", "alice/gamma"]);
          expect(labels(await catalog.list({ owner: "carol" }))).toEqual([]);
        });

        it("filters by kind", async () => {
          expect(labels(await catalog.list({ kind: "openai-compatible" }))).toEqual(["alice/beta", "bob/alpha"]);
          expect(labels(await catalog.list({ kind: "openai-tunnel" }))).toEqual(["alice/gamma"]);
        });

        it("filters by ids, ignoring ids it does not know", async () => {
          const listed = await catalog.list({ ids: [bobAlpha.id, missingId, aliceGamma.id] });

          expect(labels(listed)).toEqual(["alice/gamma", "bob/alpha"]);
        });

        it("combines filters: a record must match every one", async () => {
          expect(labels(await catalog.list({ owner: alice, kind: "openai-compatible" }))).toEqual(["alice/beta"]);
          expect(labels(await catalog.list({ owner: bob, ids: [aliceGamma.id, bobAlpha.id] }))).toEqual(["bob/alpha"]);
          expect(labels(await catalog.list({ kind: "openai-tunnel", ids: [bobAlpha.id] }))).toEqual([]);
          expect(
            labels(await catalog.list({ owner: alice, kind: "openai-tunnel", ids: [aliceGamma.id, bobAlpha.id] })),
          ).toEqual(["alice/gamma"]);
        });
      });
    });

    describe("secrets", () => {
      it("returns the plaintext secrets to readSecrets, and {} when there are none", async () => {
        const withSecrets = await catalog.create(fullProviderInput());
        const withoutSecrets = await catalog.create(providerInput({ name: "no-secrets" }));

        expect(await catalog.readSecrets(withSecrets.id)).toEqual({ apiKey: apiKeyValue, organization: organizationValue });
        expect(await catalog.readSecrets(withoutSecrets.id)).toEqual({});
      });

      it("refuses to read the secrets of an unknown provider with a 404", async () => {
        await expectGatewayError(catalog.readSecrets(missingId), "not_found");
      });

      it("never returns a secret's value from any other read or event", async () => {
        const events = recordAllProviderEvents();
        const created = await catalog.create(fullProviderInput());
        const updated = await catalog.update(created.id, {
          status: "unreachable",
          secrets: { apiKey: rotatedApiKeyValue },
        });
        const reads = [
          created,
          updated,
          await catalog.get(created.id),
          await catalog.findByName({ owner: alice, name: created.name }),
          await catalog.list(),
          await catalog.list({ owner: alice }),
        ];
        await catalog.delete(created.id);

        expectNoSecretValueIn(reads);
        expect(events.map((event) => event.name)).toEqual(
          expect.arrayContaining(["provider-create", "provider-update", "provider-status-change", "provider-delete"]),
        );
        expectNoSecretValueIn(events);
      });

      it("keeps no secret in the clear in storage", async () => {
        const created = await catalog.create(fullProviderInput());
        await catalog.update(created.id, { secrets: { apiKey: rotatedApiKeyValue } });

        const stored = await inspect();

        for (const secret of allSecretValues) expect(stored).not.toContain(secret);
        expect(await catalog.readSecrets(created.id)).toEqual({
          apiKey: rotatedApiKeyValue,
          organization: organizationValue,
        });
      });

      it("seals each secret with the context `${providerId}:${secretName}` and stores the sealed value", async () => {
        const created = await catalog.create(fullProviderInput({ id: "prv_conformance_sealed" }));
        const stored = await inspect();

        for (const [secretName, plaintext] of [
          ["apiKey", apiKeyValue],
          ["organization", organizationValue],
        ] as const) {
          const sealContext = `${created.id}:${secretName}`;
          const seals = sealCalls.filter((call) => call.context === sealContext);
          expect(seals, `a seal with context ${sealContext}`).not.toHaveLength(0);
          expect(seals.some((call) => stored.includes(call.sealed))).toBe(true);
          for (const call of seals) expect(context.secretBox.open(call.sealed, sealContext)).toBe(plaintext);
        }
      });

      it("keeps secrets readable after a rename", async () => {
        const created = await catalog.create(fullProviderInput());

        await catalog.update(created.id, { name: "renamed" });

        expect(await catalog.readSecrets(created.id)).toEqual({ apiKey: apiKeyValue, organization: organizationValue });
      });

      it("merges secrets on update: a null deletes one, the others stay", async () => {
        const created = await catalog.create(fullProviderInput());

        const updated = await catalog.update(created.id, { secrets: { organization: null, region: "eastus2" } });

        expect(updated.secretNames).toEqual(["apiKey", "region"]);
        expect(await catalog.readSecrets(created.id)).toEqual({ apiKey: apiKeyValue, region: "eastus2" });

        const rotated = await catalog.update(created.id, { secrets: { apiKey: rotatedApiKeyValue } });

        expect(rotated.secretNames).toEqual(["apiKey", "region"]);
        expect(await catalog.readSecrets(created.id)).toEqual({ apiKey: rotatedApiKeyValue, region: "eastus2" });
        expect(await catalog.get(created.id)).toEqual(rotated);
      });

      it("can delete every secret", async () => {
        const created = await catalog.create(fullProviderInput());

        const updated = await catalog.update(created.id, { secrets: { apiKey: null, organization: null } });

        expect(updated.secretNames).toEqual([]);
        expect(await catalog.readSecrets(created.id)).toEqual({});
      });
    });

    describe("update", () => {
      it("applies a partial update, bumping the version and moving updatedAt to the clock", async () => {
        const created = await catalog.create(fullProviderInput());
        context.clock.advance(5_000);

        const updated = await catalog.update(created.id, { description: "Llama 3.1", tags: ["gpu"] });

        expect(updated).toEqual({
          ...created,
          description: "Llama 3.1",
          tags: ["gpu"],
          updatedAt: created.createdAt + 5_000,
          version: 2,
        });
        expect(await catalog.get(created.id)).toEqual(updated);
      });

      it("increments the version on every change", async () => {
        const created = await catalog.create(providerInput());

        await catalog.update(created.id, { description: "one" });
        context.clock.advance(1_000);
        const third = await catalog.update(created.id, { description: "two" });

        expect(third.version).toBe(3);
        expect(third.updatedAt).toBe(context.clock.now());
        expect(third.createdAt).toBe(created.createdAt);
      });

      it("replaces settings whole", async () => {
        const created = await catalog.create(fullProviderInput());

        const updated = await catalog.update(created.id, { settings: { endpoint: "https://other.example.test/v1" } });

        expect(updated.settings).toEqual({ endpoint: "https://other.example.test/v1" });
      });

      it("clears a description and a status reason with null", async () => {
        const created = await catalog.create(fullProviderInput());

        const updated = await catalog.update(created.id, { description: null, statusReason: null });

        expect(updated).toMatchObject({ description: null, statusReason: null, version: 2 });
      });

      it("publishes provider-update with the new record", async () => {
        const created = await catalog.create(providerInput());
        const updates = recordEvents("provider-update");
        const statusChanges = recordEvents("provider-status-change");

        const updated = await catalog.update(created.id, { description: "Llama 3.1" });

        expect(updates).toEqual([updated]);
        expect(statusChanges).toEqual([]);
      });

      it("publishes provider-status-change with the previous status, alongside provider-update", async () => {
        const created = await catalog.create(providerInput());
        const updates = recordEvents("provider-update");
        const statusChanges = recordEvents("provider-status-change");

        const updated = await catalog.update(created.id, { status: "unreachable", statusReason: "connection refused" });

        expect(updated).toMatchObject({ status: "unreachable", statusReason: "connection refused", version: 2 });
        expect(updates).toEqual([updated]);
        expect(statusChanges).toEqual([{ provider: updated, previous: "unknown" }]);
      });

      it("returns the record unchanged for a patch that changes nothing, with no event", async () => {
        const created = await catalog.create(fullProviderInput());
        const events = recordAllProviderEvents();
        context.clock.advance(5_000);

        const empty = await catalog.update(created.id, {});
        const sameValues = await catalog.update(created.id, {
          name: created.name,
          description: created.description,
          tags: [...created.tags],
          status: created.status,
          statusReason: created.statusReason,
          settings: structuredClone(created.settings),
        });

        expect(empty).toEqual(created);
        expect(sameValues).toEqual(created);
        expect(await catalog.get(created.id)).toEqual(created);
        expect(events).toEqual([]);
      });

      it("accepts an expectedVersion that is current", async () => {
        const created = await catalog.create(providerInput());

        const updated = await catalog.update(created.id, { description: "checked" }, { expectedVersion: 1 });

        expect(updated).toMatchObject({ description: "checked", version: 2 });
      });

      it("refuses a stale expectedVersion with a 409 and changes nothing", async () => {
        const created = await catalog.create(providerInput());
        const current = await catalog.update(created.id, { description: "first writer" });
        const updates = recordEvents("provider-update");

        await expectGatewayError(
          catalog.update(created.id, { description: "second writer" }, { expectedVersion: created.version }),
          "conflict",
        );

        expect(await catalog.get(created.id)).toEqual(current);
        expect(updates).toEqual([]);
      });

      it("renames a provider, freeing its old name", async () => {
        const created = await catalog.create(providerInput({ name: "old-name" }));

        const renamed = await catalog.update(created.id, { name: "new-name" });

        expect(renamed).toMatchObject({ id: created.id, name: "new-name", version: 2 });
        expect(await catalog.findByName({ owner: alice, name: "new-name" })).toEqual(renamed);
        expect(await catalog.findByName({ owner: alice, name: "old-name" })).toBeNull();
        await expect(catalog.create(providerInput({ name: "old-name" }))).resolves.toMatchObject({ name: "old-name" });
      });

      it("refuses a rename onto another of the owner's provider names with a 409", async () => {
        await catalog.create(providerInput({ name: "alpha" }));
        const beta = await catalog.create(providerInput({ name: "beta" }));

        await expectGatewayError(catalog.update(beta.id, { name: "alpha" }), "conflict");

        expect(await catalog.get(beta.id)).toEqual(beta);
      });

      it("allows a rename onto a name another owner uses", async () => {
        await catalog.create(providerInput({ owner: bob, name: "shared-name" }));
        const mine = await catalog.create(providerInput({ owner: alice, name: "mine" }));

        const renamed = await catalog.update(mine.id, { name: "shared-name" });

        expect(labels(await catalog.list())).toEqual(["alice/shared-name", "bob/shared-name"]);
        expect(renamed.id).toBe(mine.id);
      });

      it("refuses to update an unknown provider with a 404", async () => {
        await expectGatewayError(catalog.update(missingId, { description: "nobody home" }), "not_found");
      });
    });

    describe("delete", () => {
      it("deletes idempotently, publishing provider-delete once with the last record", async () => {
        const created = await catalog.create(fullProviderInput());
        const last = await catalog.update(created.id, { status: "unreachable" });
        const deletes = recordEvents("provider-delete");

        expect(await catalog.delete(created.id)).toBe(true);
        expect(await catalog.delete(created.id)).toBe(false);

        expect(deletes).toEqual([last]);
      });

      it("forgets the provider and its secrets", async () => {
        const created = await catalog.create(fullProviderInput());

        await catalog.delete(created.id);

        expect(await catalog.get(created.id)).toBeNull();
        expect(await catalog.findByName({ owner: alice, name: created.name })).toBeNull();
        expect(await catalog.list()).toEqual([]);
        await expectGatewayError(catalog.readSecrets(created.id), "not_found");
        await expectGatewayError(catalog.update(created.id, { description: "too late" }), "not_found");
        const stored = await inspect();
        for (const call of sealCalls) expect(stored).not.toContain(call.sealed);
      });

      it("frees the name for a new provider", async () => {
        const created = await catalog.create(fullProviderInput());
        await catalog.delete(created.id);

        const again = await catalog.create(providerInput());

        expect(again).toMatchObject({ name: created.name, version: 1, secretNames: [] });
        expect(await catalog.readSecrets(again.id)).toEqual({});
      });

      it("resolves false for an unknown provider, with no event", async () => {
        const deletes = recordEvents("provider-delete");

        expect(await catalog.delete(missingId)).toBe(false);
        expect(deletes).toEqual([]);
      });
    });

    describe("input validation", () => {
      it("rejects a name containing '/' or ':'", async () => {
        await expectGatewayError(catalog.create(providerInput({ name: "team/llama" })), "invalid_request", "name");
        await expectGatewayError(catalog.create(providerInput({ name: "team:llama" })), "invalid_request", "name");
        await expectGatewayError(catalog.create(providerInput({ name: "" })), "invalid_request", "name");
      });

      it("accepts a name of 63 characters and rejects one of 64", async () => {
        await expectGatewayError(catalog.create(providerInput({ name: "a".repeat(64) })), "invalid_request", "name");

        await expect(catalog.create(providerInput({ name: "a".repeat(63) }))).resolves.toMatchObject({
          name: "a".repeat(63),
        });
      });

      it("rejects an owner containing ':'", async () => {
        await expectGatewayError(catalog.create(providerInput({ owner: "alice:admin" })), "invalid_request", "owner");
      });

      it("rejects an unknown kind", async () => {
        await expectGatewayError(
          catalog.create(providerInput({ kind: unchecked<CreateProviderInput["kind"]>("openai-v2") })),
          "invalid_request",
          "kind",
        );
      });

      it("rejects tags that are not an array", async () => {
        await expectGatewayError(
          catalog.create(providerInput({ tags: unchecked<string[]>("gpu") })),
          "invalid_request",
          "tags",
        );
      });

      it("rejects an empty secret value", async () => {
        await expectGatewayError(
          catalog.create(providerInput({ secrets: { apiKey: "" } })),
          "invalid_request",
          "secrets.apiKey",
        );
      });

      it("rejects an unknown extra key, naming it", async () => {
        const error = await expectGatewayError(
          catalog.create(unchecked<CreateProviderInput>({ ...providerInput(), endpoint: "https://example.test" })),
          "invalid_request",
        );

        expect(error.message).toContain("endpoint");
      });

      it("stores nothing and publishes nothing for rejected input", async () => {
        const events = recordAllProviderEvents();

        await expectGatewayError(catalog.create(providerInput({ name: "team/llama" })), "invalid_request");
        await expectGatewayError(catalog.create(providerInput({ secrets: { apiKey: "" } })), "invalid_request");

        expect(await catalog.list()).toEqual([]);
        expect(events).toEqual([]);
      });

      it("rejects a bad update and leaves the record as it was", async () => {
        const created = await catalog.create(fullProviderInput());

        await expectGatewayError(catalog.update(created.id, { name: "bad/name" }), "invalid_request", "name");
        await expectGatewayError(
          catalog.update(created.id, { secrets: { apiKey: "" } }),
          "invalid_request",
          "secrets.apiKey",
        );
        await expectGatewayError(
          catalog.update(created.id, unchecked<UpdateProviderInput>({ owner: bob })),
          "invalid_request",
        );

        expect(await catalog.get(created.id)).toEqual(created);
        expect(await catalog.readSecrets(created.id)).toEqual({ apiKey: apiKeyValue, organization: organizationValue });
      });
    });

    describe("returned objects are copies", () => {
      function tamper(record: ProviderRecord | null | undefined): void {
        if (!record) return;
        record.tags.push("tampered");
        record.settings.endpoint = "https://attacker.example.test";
        const models = record.settings.models;
        if (Array.isArray(models)) models.push("tampered-model");
        record.secretNames.push("tampered");
        record.name = "tampered";
      }

      it("does not let a caller change a stored provider through a returned record", async () => {
        const created = await catalog.create(fullProviderInput());
        const expected = structuredClone(created);

        tamper(created);
        tamper(await catalog.get(expected.id));
        tamper(await catalog.findByName({ owner: alice, name: expected.name }));
        for (const record of await catalog.list()) tamper(record);

        expect(await catalog.get(expected.id)).toEqual(expected);
        expect(await catalog.findByName({ owner: alice, name: expected.name })).toEqual(expected);
      });

      it("does not let a caller change a stored provider through an update's result", async () => {
        const created = await catalog.create(fullProviderInput());
        const updated = await catalog.update(created.id, { description: "updated" });
        const expected = structuredClone(updated);

        tamper(updated);

        expect(await catalog.get(created.id)).toEqual(expected);
      });

      it("does not keep a reference to the caller's input", async () => {
        const settings: Record<string, unknown> = { endpoint: "https://vllm.example.test/v1", models: ["llama"] };
        const tags = ["gpu"];
        const secrets: Record<string, string> = { apiKey: apiKeyValue };
        const created = await catalog.create(providerInput({ settings, tags, secrets }));
        const patchSettings: Record<string, unknown> = { endpoint: "https://second.example.test/v1" };
        const updated = await catalog.update(created.id, { settings: patchSettings });
        const expected = structuredClone(updated);

        settings.endpoint = "https://attacker.example.test";
        tags.push("tampered");
        secrets.apiKey = "sk-tampered";
        patchSettings.endpoint = "https://attacker.example.test";

        expect(await catalog.get(created.id)).toEqual(expected);
        expect(await catalog.readSecrets(created.id)).toEqual({ apiKey: apiKeyValue });
      });

      it("does not let a caller change stored secrets through readSecrets' result", async () => {
        const created = await catalog.create(fullProviderInput());

        const secrets = await catalog.readSecrets(created.id);
        secrets.apiKey = "sk-tampered";
        secrets.extra = "added";

        expect(await catalog.readSecrets(created.id)).toEqual({ apiKey: apiKeyValue, organization: organizationValue });
      });
    });
  });
}

/** Wraps a secret box to record every seal, so a test can check the context each secret was bound to. */
function recordingSeals(box: SecretBox, calls: SealCall[]): SecretBox {
  return {
    seal(plaintext, sealContext) {
      const sealed = box.seal(plaintext, sealContext);
      calls.push({ context: sealContext, sealed });
      return sealed;
    },
    open: (sealed, sealContext) => box.open(sealed, sealContext),
  };
}

function expectExactlyOneCreated(outcomes: ReadonlyArray<PromiseSettledResult<ProviderRecord>>): void {
  const refusals = outcomes.flatMap((outcome) => (outcome.status === "rejected" ? [outcome.reason] : []));
  const created = outcomes.filter((outcome) => outcome.status === "fulfilled");
  expect(created, "concurrent creates of one (owner, name) that succeeded").toHaveLength(1);
  expect(refusals, "concurrent creates of one (owner, name) that were refused").toHaveLength(outcomes.length - 1);
  for (const reason of refusals) expectGatewayErrorValue(reason, "conflict");
}

