import {
  createEventBus,
  createId,
  createKeyInputSchema,
  GatewayError,
  generateKeySecret,
  hashKeySecret,
  keySecretHint,
  looksLikeKeySecret,
  parseArgumentObject,
  parseField,
  parseFlag,
  parseInput,
  parseText,
  parseWholeNumber,
  principalIdSchema,
  reserveInputSchema,
  systemClock,
} from "@sluice/core";
import type { AiKey, Clock, CreateKeyInput, KeyStore, KeyVerification, SluiceEventBus } from "@sluice/core";
import { compareText } from "./compare-text.js";

export interface MemoryKeyStoreOptions {
  clock?: Clock;
  events?: SluiceEventBus;
}

export type MemoryKeyStore = KeyStore & {
  /** Everything stored, as JSON text: secrets appear only hashed. For conformance tests. */
  inspect(): string;
};

interface StoredKey {
  /** Never handed out: every read returns a copy. */
  key: AiKey;
  secretHash: string;
}

/** A key id, as the ledger's inputs take one. */
const keyIdSchema = reserveInputSchema.shape.keyId.unwrap();

/** AI keys held in process memory. */
export function createMemoryKeyStore(options: MemoryKeyStoreOptions = {}): MemoryKeyStore {
  const clock = options.clock ?? systemClock;
  const events = options.events ?? createEventBus();
  const keys = new Map<string, StoredKey>();
  /** Secret hash -> key id: `verify` is one lookup, then a constant-time compare. */
  const idsBySecretHash = new Map<string, string>();
  const idsByUser = new Map<string, Set<string>>();

  /** The user's own key, or undefined: another user's key is answered as unknown. */
  function ownKey(input: unknown, what: string): StoredKey | undefined {
    const fields = parseArgumentObject(input, ["userId", "keyId"], what);
    const userId = parseField(principalIdSchema, fields.userId, "userId", what);
    const keyId = parseField(keyIdSchema, fields.keyId, "keyId", what);
    const stored = keys.get(keyId);
    return stored && stored.key.userId === userId ? stored : undefined;
  }

  return {
    async create(input: CreateKeyInput) {
      const parsed = parseInput(createKeyInputSchema, input, "key");
      const now = clock.now();
      const expiresAt = parsed.expiresAt ?? null;
      if (expiresAt !== null && expiresAt <= now) {
        throw new GatewayError("invalid_request", "Invalid key: 'expiresAt' must lie in the future", {
          param: "expiresAt",
        });
      }
      for (const keyId of idsByUser.get(parsed.userId) ?? []) {
        const { key } = keys.get(keyId)!;
        if (key.revokedAt === null && key.name === parsed.name) {
          throw new GatewayError("conflict", `You already have a key named '${parsed.name}'.`, { param: "name" });
        }
      }
      const secret = generateKeySecret();
      const key: AiKey = {
        id: createId("key"),
        userId: parsed.userId,
        name: parsed.name,
        allocationId: parsed.allocationId,
        hint: keySecretHint(secret),
        createdAt: now,
        expiresAt,
        lastUsedAt: null,
        revokedAt: null,
        restrictions: {
          providers: parsed.restrictions?.providers ? [...parsed.restrictions.providers] : null,
          models: parsed.restrictions?.models ? [...parsed.restrictions.models] : null,
        },
        limit: parsed.limit ?? null,
      };
      const secretHash = hashKeySecret(secret);
      keys.set(key.id, { key, secretHash });
      idsBySecretHash.set(secretHash, key.id);
      let userKeys = idsByUser.get(key.userId);
      if (!userKeys) idsByUser.set(key.userId, (userKeys = new Set()));
      userKeys.add(key.id);
      events.publish("key-create", copyKey(key));
      return { key: copyKey(key), secret };
    },

    async get(input) {
      const stored = ownKey(input, "key lookup");
      return stored ? copyKey(stored.key) : null;
    },

    async list(input) {
      const what = "key list";
      const fields = parseArgumentObject(input, ["userId", "nameContains", "includeRevoked"], what);
      const userId = parseField(principalIdSchema, fields.userId, "userId", what);
      const nameContains =
        fields.nameContains === undefined ? undefined : parseText(fields.nameContains, "nameContains", what);
      const includeRevoked =
        fields.includeRevoked === undefined ? false : parseFlag(fields.includeRevoked, "includeRevoked", what);
      const needle = nameContains?.toLowerCase();
      const matches: AiKey[] = [];
      for (const keyId of idsByUser.get(userId) ?? []) {
        const { key } = keys.get(keyId)!;
        if (key.revokedAt !== null && !includeRevoked) continue;
        if (needle !== undefined && !key.name.toLowerCase().includes(needle)) continue;
        matches.push(copyKey(key));
      }
      return matches.sort((left, right) => right.createdAt - left.createdAt || compareText(right.id, left.id));
    },

    async revoke(input) {
      const stored = ownKey(input, "key revocation");
      if (!stored) throw new GatewayError("not_found", "You have no key with that id.", { param: "keyId" });
      if (stored.key.revokedAt === null) {
        stored.key.revokedAt = clock.now();
        events.publish("key-revoke", copyKey(stored.key));
      }
      return copyKey(stored.key);
    },

    async verify(secret: string): Promise<KeyVerification> {
      // Whatever arrives here came from an Authorization header: refuse junk before hashing it.
      if (typeof secret !== "string" || !looksLikeKeySecret(secret)) return { status: "unknown" };
      // Found by its hash, the key's stored hash is the presented one: hashing again to compare
      // in constant time would only repeat what the lookup established.
      const keyId = idsBySecretHash.get(hashKeySecret(secret));
      const stored = keyId === undefined ? undefined : keys.get(keyId);
      if (!stored) return { status: "unknown" };
      const key = copyKey(stored.key);
      if (key.revokedAt !== null) return { status: "revoked", key };
      if (key.expiresAt !== null && key.expiresAt <= clock.now()) return { status: "expired", key };
      return { status: "valid", key };
    },

    async recordUse(input) {
      const fields = parseArgumentObject(input, ["keyId", "at"], "key use");
      const keyId = parseField(keyIdSchema, fields.keyId, "keyId", "key use");
      const at = parseWholeNumber(fields.at, "at", "key use");
      const stored = keys.get(keyId);
      // Best effort by contract: a key deleted or never known is nothing to record.
      if (!stored) return;
      const previous = stored.key.lastUsedAt;
      if (previous === null || at > previous) stored.key.lastUsedAt = at;
    },

    inspect() {
      return JSON.stringify({ keys: [...keys.values()], idsBySecretHash: Object.fromEntries(idsBySecretHash) }, null, 2);
    },
  };
}

function copyKey(key: AiKey): AiKey {
  return {
    ...key,
    restrictions: {
      providers: key.restrictions.providers === null ? null : [...key.restrictions.providers],
      models: key.restrictions.models === null ? null : [...key.restrictions.models],
    },
  };
}
