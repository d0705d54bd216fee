import { randomBytes } from "node:crypto";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createManualClock } from "../clock/clock.js";
import { createEventBus } from "../events/sluice-events.js";
import type { SluiceEventName, SluiceEvents } from "../events/sluice-events.js";
import { KEY_SECRET_PREFIX, hashKeySecret, keySecretHint, looksLikeKeySecret } from "../keys/key-secret.js";
import { keyAllows } from "../keys/key-store.js";
import type { AiKey, CreateKeyInput, CreatedKey, KeyStore } from "../keys/key-store.js";
import { createSecretBox } from "../provider/secret-box.js";
import type { StoreHarness, StoreHarnessContext, StoreUnderTest } from "./store-harness.js";
import { expectGatewayError } from "./expect-gateway-error.js";

const MINUTE = 60_000;
const DAY = 86_400_000;

/** Monday 2026-01-05, noon UTC. */
const START = Date.UTC(2026, 0, 5, 12);

/** Every field an AiKey read carries, and nothing else (no secret, no hash, no storage detail). */
const aiKeyFields = [
  "allocationId",
  "createdAt",
  "expiresAt",
  "hint",
  "id",
  "lastUsedAt",
  "limit",
  "name",
  "restrictions",
  "revokedAt",
  "userId",
];

/**
 * The KeyStore conformance suite. Every implementation runs it in one line:
 * `describeKeyStore("memory", { create: async (context) => ({ store: ..., inspect: ... }) })`.
 */
export function describeKeyStore(name: string, harness: StoreHarness<KeyStore>): void {
  describe(`KeyStore conformance: ${name}`, () => {
    let context: StoreHarnessContext;
    let underTest: StoreUnderTest<KeyStore> | undefined;
    let keys: KeyStore;

    beforeEach(async () => {
      context = {
        clock: createManualClock({ start: START }),
        events: createEventBus(),
        secretBox: createSecretBox({ key: randomBytes(32) }),
      };
      underTest = await harness.create(context);
      keys = underTest.store;
    });

    afterEach(async () => {
      await underTest?.close?.();
      underTest = undefined;
    });

    function createKey(input: Partial<CreateKeyInput> = {}): Promise<CreatedKey> {
      return keys.create({ userId: "alice", name: "laptop", allocationId: "alc-research", ...input });
    }

    async function getKey(userId: string, keyId: string): Promise<AiKey> {
      const key = await keys.get({ userId, keyId });
      if (key === null) throw new Error(`key ${keyId} of ${userId} is missing`);
      return key;
    }

    function inspectStore(): Promise<string> {
      if (!underTest) throw new Error("no store under test");
      return underTest.inspect();
    }

    function recordEvents<Name extends SluiceEventName>(eventName: Name): Array<SluiceEvents[Name][0]> {
      const seen: Array<SluiceEvents[Name][0]> = [];
      const listener = (...args: SluiceEvents[Name]): void => {
        seen.push(args[0]);
      };
      context.events.on(eventName, listener as never);
      return seen;
    }

    describe("create", () => {
      it("returns a secret with the Sluice prefix that verifies as valid", async () => {
        const { key, secret } = await createKey();

        expect(secret.startsWith(KEY_SECRET_PREFIX)).toBe(true);
        expect(looksLikeKeySecret(secret)).toBe(true);
        expect(await keys.verify(secret)).toEqual({ status: "valid", key });
      });

      it("fills in the defaults", async () => {
        const { key, secret } = await createKey({ userId: "alice", name: "laptop", allocationId: "alc-research" });

        expect(key.id).toMatch(/^key_/);
        expect(key).toEqual({
          id: key.id,
          userId: "alice",
          name: "laptop",
          allocationId: "alc-research",
          hint: keySecretHint(secret),
          createdAt: START,
          expiresAt: null,
          lastUsedAt: null,
          revokedAt: null,
          restrictions: { providers: null, models: null },
          limit: null,
        });
      });

      it("gives every key its own id and secret", async () => {
        const first = await createKey({ name: "laptop" });
        const second = await createKey({ name: "desktop" });

        expect(first.key.id).not.toBe(second.key.id);
        expect(first.secret).not.toBe(second.secret);
        expect((await keys.verify(second.secret)).status).toBe("valid");
      });

      it("shows the prefix and the secret's last four characters as the hint", async () => {
        const { key, secret } = await createKey();

        expect(key.hint).toBe(`${KEY_SECRET_PREFIX}…${secret.slice(-4)}`);
      });

      it("stores the name trimmed", async () => {
        const { key } = await createKey({ name: "  work laptop  " });

        expect(key.name).toBe("work laptop");
        expect((await getKey("alice", key.id)).name).toBe("work laptop");
      });

      it("stores the expiry and the limit as given", async () => {
        const { key } = await createKey({ expiresAt: START + 30 * DAY, limit: 5_000_000 });

        expect(key).toMatchObject({ expiresAt: START + 30 * DAY, limit: 5_000_000 });
        expect(await getKey("alice", key.id)).toMatchObject({ expiresAt: START + 30 * DAY, limit: 5_000_000 });
      });

      it("stores a limit of 0 as 0, not as no limit", async () => {
        const { key } = await createKey({ limit: 0 });

        expect((await getKey("alice", key.id)).limit).toBe(0);
      });

      it("publishes key-create with the new key", async () => {
        const created = recordEvents("key-create");

        const { key } = await createKey();

        expect(created).toEqual([key]);
      });
    });

    describe("secrecy", () => {
      it("never stores the secret in the clear", async () => {
        const { key, secret } = await createKey();
        await keys.recordUse({ keyId: key.id, at: START + MINUTE });
        const revoked = await createKey({ name: "revoked" });
        await keys.revoke({ userId: "alice", keyId: revoked.key.id });

        const stored = await inspectStore();

        expect(stored).not.toContain(secret);
        expect(stored).not.toContain(secret.slice(KEY_SECRET_PREFIX.length));
      });

      it("never returns the secret or its hash from a read", async () => {
        const createdEvents = recordEvents("key-create");
        const revokedEvents = recordEvents("key-revoke");
        const { key, secret } = await createKey();
        const other = await createKey({ name: "other" });
        await keys.recordUse({ keyId: key.id, at: START + MINUTE });

        const reads = [
          key,
          await keys.get({ userId: "alice", keyId: key.id }),
          await keys.list({ userId: "alice" }),
          await keys.verify(secret),
          await keys.revoke({ userId: "alice", keyId: key.id }),
          await keys.list({ userId: "alice", includeRevoked: true }),
          await keys.verify(secret),
          createdEvents,
          revokedEvents,
        ];

        const text = JSON.stringify(reads);
        for (const shown of [secret, other.secret]) {
          expect(text).not.toContain(shown);
          expect(text).not.toContain(hashKeySecret(shown));
        }
      });

      it("returns exactly the fields of an AiKey from every read", async () => {
        const { key, secret } = await createKey();

        const reads: AiKey[] = [key, await getKey("alice", key.id), ...(await keys.list({ userId: "alice" }))];
        const verification = await keys.verify(secret);
        if (verification.status !== "unknown") reads.push(verification.key);
        reads.push(await keys.revoke({ userId: "alice", keyId: key.id }));

        for (const read of reads) expect(Object.keys(read).sort()).toEqual(aiKeyFields);
      });
    });

    describe("expiry", () => {
      it("refuses an expiry in the past (400 naming expiresAt)", async () => {
        await expectGatewayError(createKey({ expiresAt: START - 1 }), "invalid_request", "expiresAt");
      });

      it("refuses an expiry of now (400 naming expiresAt)", async () => {
        await expectGatewayError(createKey({ expiresAt: START }), "invalid_request", "expiresAt");
      });

      it("accepts an expiry a millisecond from now", async () => {
        const { key } = await createKey({ expiresAt: START + 1 });

        expect(key.expiresAt).toBe(START + 1);
      });

      it("is valid until the instant it expires, and expired from then on", async () => {
        const { key, secret } = await createKey({ expiresAt: START + DAY });

        context.clock.set(START + DAY - 1);
        expect(await keys.verify(secret)).toEqual({ status: "valid", key });

        context.clock.set(START + DAY);
        expect(await keys.verify(secret)).toEqual({ status: "expired", key });

        context.clock.advance(365 * DAY);
        expect((await keys.verify(secret)).status).toBe("expired");
      });

      it("never expires a key without an expiry", async () => {
        const { secret } = await createKey({ expiresAt: null });

        context.clock.advance(10 * 365 * DAY);

        expect((await keys.verify(secret)).status).toBe("valid");
      });

      it("still lists an expired key: only revoked keys are hidden", async () => {
        const { key } = await createKey({ expiresAt: START + DAY });
        context.clock.advance(2 * DAY);

        expect((await keys.list({ userId: "alice" })).map((listed) => listed.id)).toEqual([key.id]);
        expect(await keys.get({ userId: "alice", keyId: key.id })).toEqual(key);
      });
    });

    describe("revoke", () => {
      it("takes effect at once: the next verify answers revoked", async () => {
        const { key, secret } = await createKey();
        context.clock.advance(MINUTE);

        const revoked = await keys.revoke({ userId: "alice", keyId: key.id });

        expect(revoked).toEqual({ ...key, revokedAt: START + MINUTE });
        expect(await keys.verify(secret)).toEqual({ status: "revoked", key: revoked });
        expect(await keys.get({ userId: "alice", keyId: key.id })).toEqual(revoked);
      });

      it("is idempotent and keeps the first revocation time", async () => {
        const { key } = await createKey();
        context.clock.advance(MINUTE);
        const first = await keys.revoke({ userId: "alice", keyId: key.id });
        context.clock.advance(MINUTE);

        const second = await keys.revoke({ userId: "alice", keyId: key.id });

        expect(second).toEqual(first);
        expect((await getKey("alice", key.id)).revokedAt).toBe(START + MINUTE);
      });

      it("publishes key-revoke once, with the revoked key", async () => {
        const { key } = await createKey();
        const revocations = recordEvents("key-revoke");

        const revoked = await keys.revoke({ userId: "alice", keyId: key.id });
        await keys.revoke({ userId: "alice", keyId: key.id });

        expect(revocations).toEqual([revoked]);
      });

      it("answers revoked for a revoked key even after it expires", async () => {
        const { key, secret } = await createKey({ expiresAt: START + DAY });
        await keys.revoke({ userId: "alice", keyId: key.id });

        context.clock.advance(2 * DAY);

        expect((await keys.verify(secret)).status).toBe("revoked");
      });

      it("answers revoked for an expired key that is then revoked", async () => {
        const { key, secret } = await createKey({ expiresAt: START + DAY });
        context.clock.advance(2 * DAY);

        await keys.revoke({ userId: "alice", keyId: key.id });

        expect((await keys.verify(secret)).status).toBe("revoked");
      });

      it("refuses an unknown key (404)", async () => {
        await expectGatewayError(keys.revoke({ userId: "alice", keyId: "key_unknown" }), "not_found");
      });
    });

    describe("verify", () => {
      const junk: Array<{ what: string; value: unknown }> = [
        { what: "an empty string", value: "" },
        { what: "the bare prefix", value: KEY_SECRET_PREFIX },
        { what: "another vendor's key", value: "sk-proj-" + "a".repeat(48) },
        { what: "a well-formed secret that was never issued", value: KEY_SECRET_PREFIX + "A".repeat(43) },
        { what: "a secret far too long", value: KEY_SECRET_PREFIX + "A".repeat(10_000) },
        { what: "undefined", value: undefined },
        { what: "null", value: null },
        { what: "a number", value: 42 },
        { what: "an object", value: { secret: KEY_SECRET_PREFIX } },
        { what: "an array", value: [KEY_SECRET_PREFIX] },
      ];
      for (const { what, value } of junk) {
        it(`answers unknown for ${what}, without throwing`, async () => {
          await createKey();

          expect(await keys.verify(value as never)).toEqual({ status: "unknown" });
        });
      }

      it("answers unknown for near misses of a real secret", async () => {
        const { secret } = await createKey();
        const lastCharacter = secret.slice(-1);
        const nearMisses = [
          secret.slice(0, -1) + (lastCharacter === "A" ? "B" : "A"),
          secret.slice(0, -1),
          `${secret} `,
          ` ${secret}`,
          secret.toUpperCase() === secret ? secret.toLowerCase() : secret.toUpperCase(),
          secret.slice(KEY_SECRET_PREFIX.length),
          hashKeySecret(secret),
        ];

        for (const nearMiss of nearMisses) {
          expect(await keys.verify(nearMiss)).toEqual({ status: "unknown" });
        }
      });

      it("tells keys apart", async () => {
        const laptop = await createKey({ name: "laptop" });
        const desktop = await createKey({ name: "desktop", userId: "bob" });

        expect(await keys.verify(laptop.secret)).toEqual({ status: "valid", key: laptop.key });
        expect(await keys.verify(desktop.secret)).toEqual({ status: "valid", key: desktop.key });
      });
    });

    describe("scoping to the user", () => {
      it("answers another user's get of the key with null", async () => {
        const { key } = await createKey({ userId: "alice" });

        expect(await keys.get({ userId: "bob", keyId: key.id })).toBeNull();
      });

      it("leaves the key out of another user's list", async () => {
        await createKey({ userId: "alice", name: "laptop" });
        const bobs = await createKey({ userId: "bob", name: "laptop" });

        expect(await keys.list({ userId: "bob", includeRevoked: true })).toEqual([bobs.key]);
      });

      it("refuses another user's revoke as unknown (404), and the key stays valid", async () => {
        const { key, secret } = await createKey({ userId: "alice" });

        await expectGatewayError(keys.revoke({ userId: "bob", keyId: key.id }), "not_found");
        expect((await keys.verify(secret)).status).toBe("valid");
        expect((await getKey("alice", key.id)).revokedAt).toBeNull();
      });

      it("answers null for an unknown key id and [] for a user without keys", async () => {
        await createKey();

        expect(await keys.get({ userId: "alice", keyId: "key_unknown" })).toBeNull();
        expect(await keys.list({ userId: "nobody" })).toEqual([]);
      });
    });

    describe("list", () => {
      it("lists the newest key first", async () => {
        const first = await createKey({ name: "first" });
        context.clock.advance(MINUTE);
        const second = await createKey({ name: "second" });
        context.clock.advance(MINUTE);
        const third = await createKey({ name: "third" });

        const listed = await keys.list({ userId: "alice" });

        expect(listed).toEqual([third.key, second.key, first.key]);
      });

      it("orders keys created at the same instant by id, descending", async () => {
        const created = [await createKey({ name: "a" }), await createKey({ name: "b" }), await createKey({ name: "c" })];

        const listed = await keys.list({ userId: "alice" });

        const idsDescending = created.map(({ key }) => key.id).sort((left, right) => (left < right ? 1 : -1));
        expect(listed.map((key) => key.id)).toEqual(idsDescending);
      });

      it("hides revoked keys unless asked to include them", async () => {
        const kept = await createKey({ name: "kept" });
        context.clock.advance(MINUTE);
        const revoked = await createKey({ name: "revoked" });
        await keys.revoke({ userId: "alice", keyId: revoked.key.id });

        expect((await keys.list({ userId: "alice" })).map((key) => key.id)).toEqual([kept.key.id]);
        expect((await keys.list({ userId: "alice", includeRevoked: true })).map((key) => key.id)).toEqual([
          revoked.key.id,
          kept.key.id,
        ]);
      });

      it("filters by a name substring, ignoring case", async () => {
        const laptop = await createKey({ name: "Work Laptop" });
        context.clock.advance(MINUTE);
        const desktop = await createKey({ name: "home desktop" });
        context.clock.advance(MINUTE);
        await createKey({ name: "CI runner" });

        const names = async (nameContains: string): Promise<string[]> =>
          (await keys.list({ userId: "alice", nameContains })).map((key) => key.id);

        expect(await names("LAPTOP")).toEqual([laptop.key.id]);
        expect(await names("top")).toEqual([desktop.key.id, laptop.key.id]);
        expect(await names("printer")).toEqual([]);
      });

      it("applies the name filter to revoked keys when they are included", async () => {
        const { key } = await createKey({ name: "old laptop" });
        await keys.revoke({ userId: "alice", keyId: key.id });
        await createKey({ name: "desktop" });

        const listed = await keys.list({ userId: "alice", nameContains: "Laptop", includeRevoked: true });

        expect(listed.map((listedKey) => listedKey.id)).toEqual([key.id]);
      });
    });

    describe("names", () => {
      it("refuses a second live key with the same name (409)", async () => {
        await createKey({ name: "laptop" });

        await expectGatewayError(createKey({ name: "laptop" }), "conflict");
        await expectGatewayError(createKey({ name: "  laptop " }), "conflict");
        expect(await keys.list({ userId: "alice" })).toHaveLength(1);
      });

      it("publishes nothing for a refused create", async () => {
        await createKey({ name: "laptop" });
        const created = recordEvents("key-create");

        await expectGatewayError(createKey({ name: "laptop" }), "conflict");

        expect(created).toEqual([]);
      });

      it("allows the name again once the first key is revoked", async () => {
        const first = await createKey({ name: "laptop" });
        await keys.revoke({ userId: "alice", keyId: first.key.id });

        const second = await createKey({ name: "laptop" });

        expect(second.key.name).toBe("laptop");
        expect((await keys.verify(second.secret)).status).toBe("valid");
        expect((await keys.verify(first.secret)).status).toBe("revoked");
      });

      it("lets different users give keys the same name", async () => {
        await createKey({ userId: "alice", name: "laptop" });

        const bobs = await createKey({ userId: "bob", name: "laptop" });

        expect(bobs.key.name).toBe("laptop");
      });
    });

    describe("restrictions and limit", () => {
      it("stores restrictions as given, a missing axis as null", async () => {
        const providersOnly = await createKey({ name: "providers", restrictions: { providers: ["prv-azure"] } });
        const modelsOnly = await createKey({ name: "models", restrictions: { models: ["alice:azure/gpt-4o"] } });
        const both = await createKey({
          name: "both",
          restrictions: { providers: ["prv-azure", "prv-local"], models: ["alice:azure/gpt-4o"] },
        });
        const nothing = await createKey({ name: "nothing", restrictions: { providers: [], models: null } });

        expect((await getKey("alice", providersOnly.key.id)).restrictions).toEqual({
          providers: ["prv-azure"],
          models: null,
        });
        expect((await getKey("alice", modelsOnly.key.id)).restrictions).toEqual({
          providers: null,
          models: ["alice:azure/gpt-4o"],
        });
        expect((await getKey("alice", both.key.id)).restrictions).toEqual({
          providers: ["prv-azure", "prv-local"],
          models: ["alice:azure/gpt-4o"],
        });
        expect((await getKey("alice", nothing.key.id)).restrictions).toEqual({ providers: [], models: null });
      });

      it("stored restrictions admit exactly what they name (keyAllows)", async () => {
        const open = await getKey("alice", (await createKey({ name: "open" })).key.id);
        const providersOnly = await getKey(
          "alice",
          (await createKey({ name: "providers", restrictions: { providers: ["prv-azure"] } })).key.id,
        );
        const modelsOnly = await getKey(
          "alice",
          (await createKey({ name: "models", restrictions: { models: ["alice:azure/gpt-4o"] } })).key.id,
        );
        const nothing = await getKey(
          "alice",
          (await createKey({ name: "nothing", restrictions: { providers: [], models: null } })).key.id,
        );
        const targets = [
          { providerId: "prv-azure", modelId: "alice:azure/gpt-4o" },
          { providerId: "prv-azure", modelId: "alice:azure/gpt-4o-mini" },
          { providerId: "prv-local", modelId: "bob:local/llama" },
        ];
        const allowed = (key: AiKey): boolean[] => targets.map((target) => keyAllows(key, target));

        expect(allowed(open)).toEqual([true, true, true]);
        expect(allowed(providersOnly)).toEqual([true, true, false]);
        expect(allowed(modelsOnly)).toEqual([true, false, false]);
        expect(allowed(nothing)).toEqual([false, false, false]);
      });

      it("keeps its own copy of the restrictions it was given", async () => {
        const providers = ["prv-azure"];
        const { key } = await createKey({ restrictions: { providers } });

        providers.push("prv-local");

        expect((await getKey("alice", key.id)).restrictions.providers).toEqual(["prv-azure"]);
      });
    });

    describe("recordUse", () => {
      it("sets lastUsedAt, seen by get, list and verify", async () => {
        const { key, secret } = await createKey();

        await keys.recordUse({ keyId: key.id, at: START + MINUTE });

        expect((await getKey("alice", key.id)).lastUsedAt).toBe(START + MINUTE);
        expect((await keys.list({ userId: "alice" }))[0]?.lastUsedAt).toBe(START + MINUTE);
        expect(await keys.verify(secret)).toMatchObject({ status: "valid", key: { lastUsedAt: START + MINUTE } });
      });

      it("moves lastUsedAt forward", async () => {
        const { key } = await createKey();
        await keys.recordUse({ keyId: key.id, at: START + MINUTE });

        await keys.recordUse({ keyId: key.id, at: START + 2 * MINUTE });

        expect((await getKey("alice", key.id)).lastUsedAt).toBe(START + 2 * MINUTE);
      });

      it("never moves lastUsedAt backwards", async () => {
        const { key } = await createKey();
        await keys.recordUse({ keyId: key.id, at: START + 2 * MINUTE });

        await keys.recordUse({ keyId: key.id, at: START + MINUTE });

        expect((await getKey("alice", key.id)).lastUsedAt).toBe(START + 2 * MINUTE);
      });

      it("ignores an unknown key", async () => {
        const { key } = await createKey();

        await expect(keys.recordUse({ keyId: "key_unknown", at: START + MINUTE })).resolves.toBeUndefined();
        expect((await getKey("alice", key.id)).lastUsedAt).toBeNull();
      });
    });

    describe("returned objects are copies", () => {
      it("changing a created key does not change the stored one", async () => {
        const { key } = await createKey({ restrictions: { providers: ["prv-azure"], models: ["alice:azure/gpt-4o"] } });

        key.restrictions.providers?.push("prv-local");
        key.restrictions.models = null;
        key.name = "changed";

        expect(await getKey("alice", key.id)).toMatchObject({
          name: "laptop",
          restrictions: { providers: ["prv-azure"], models: ["alice:azure/gpt-4o"] },
        });
      });

      it("changing a key read by get does not change the stored one", async () => {
        const { key } = await createKey({ restrictions: { providers: ["prv-azure"] } });
        const read = await getKey("alice", key.id);

        read.restrictions.providers?.push("prv-local");
        read.revokedAt = START;

        expect(await getKey("alice", key.id)).toMatchObject({
          revokedAt: null,
          restrictions: { providers: ["prv-azure"], models: null },
        });
      });

      it("changing a listed key or the list does not change the store", async () => {
        const { key } = await createKey({ restrictions: { models: ["alice:azure/gpt-4o"] } });
        const listed = await keys.list({ userId: "alice" });

        listed[0]?.restrictions.models?.splice(0);
        listed.pop();

        expect(await keys.list({ userId: "alice" })).toEqual([key]);
      });

      it("changing the key of a verification does not change the stored one", async () => {
        const { key, secret } = await createKey({ restrictions: { providers: ["prv-azure"] } });
        const verification = await keys.verify(secret);

        if (verification.status !== "unknown") {
          verification.key.restrictions.providers?.push("prv-local");
          verification.key.expiresAt = START;
        }

        expect(await keys.verify(secret)).toEqual({ status: "valid", key });
      });
    });

    describe("bad input", () => {
      const badCreates: Array<{ what: string; change: Record<string, unknown>; param: string }> = [
        { what: "an empty name", change: { name: "" }, param: "name" },
        { what: "a blank name", change: { name: "   " }, param: "name" },
        { what: "a name of 101 characters", change: { name: "n".repeat(101) }, param: "name" },
        { what: "a name that is not a string", change: { name: 7 }, param: "name" },
        { what: "a negative limit", change: { limit: -1 }, param: "limit" },
        { what: "a fractional limit", change: { limit: 2.5 }, param: "limit" },
        { what: "a user id with a slash", change: { userId: "alice/admin" }, param: "userId" },
        { what: "an empty allocation id", change: { allocationId: "" }, param: "allocationId" },
        { what: "a fractional expiry", change: { expiresAt: START + 0.5 }, param: "expiresAt" },
        {
          what: "an unknown restriction axis",
          change: { restrictions: { regions: ["eu"] } },
          param: "restrictions.regions",
        },
        { what: "an unknown field", change: { scope: "all" }, param: "scope" },
        {
          what: "an empty provider restriction",
          change: { restrictions: { providers: [""] } },
          param: "restrictions.providers[0]",
        },
      ];
      for (const { what, change, param } of badCreates) {
        it(`refuses a key with ${what} (400 naming ${param}) and creates nothing`, async () => {
          const created = recordEvents("key-create");

          await expectGatewayError(
            keys.create({ userId: "alice", name: "laptop", allocationId: "alc-research", ...change } as CreateKeyInput),
            "invalid_request",
            param,
          );
          expect(await keys.list({ userId: "alice", includeRevoked: true })).toEqual([]);
          expect(created).toEqual([]);
        });
      }

      it("accepts a name of exactly 100 characters", async () => {
        const { key } = await createKey({ name: "n".repeat(100) });

        expect(key.name).toHaveLength(100);
      });
    });
  });
}
