import {
  applyProviderPatch,
  createEventBus,
  createId,
  createProviderInputSchema,
  GatewayError,
  normalizeProviderSettings,
  parseArgumentObject,
  parseField,
  parseInput,
  parseWholeNumber,
  principalIdSchema,
  providerNameSchema,
  providerRefSchema,
  systemClock,
  updateProviderInputSchema,
} from "@sluice/core";
import type {
  Clock,
  CreateProviderInput,
  ListProvidersFilter,
  ProviderCatalog,
  ProviderRecord,
  SecretBox,
  SluiceEventBus,
  UpdateProviderInput,
  UpdateProviderOptions,
} from "@sluice/core";
import { compareText } from "./compare-text.js";

export interface MemoryProviderCatalogOptions {
  secretBox: SecretBox;
  clock?: Clock;
  events?: SluiceEventBus;
}

export type MemoryProviderCatalog = ProviderCatalog & {
  /** Everything stored, as JSON text: secrets appear only sealed. For conformance tests. */
  inspect(): string;
};

interface StoredProvider {
  /** Never handed out: every read returns a copy. */
  record: ProviderRecord;
  /** Secret name -> sealed value; the plaintext is never kept. */
  sealedSecrets: Map<string, string>;
}

const providerIdSchema = providerRefSchema.shape.id;

/** The provider catalog held in process memory. */
export function createMemoryProviderCatalog(options: MemoryProviderCatalogOptions): MemoryProviderCatalog {
  const { secretBox } = options;
  const clock = options.clock ?? systemClock;
  const events = options.events ?? createEventBus();
  const providers = new Map<string, StoredProvider>();
  /** `owner/name` -> id. Owners cannot contain `/`, so the key is unambiguous. */
  const idsByName = new Map<string, string>();
  /** Bumped by every mutation, failed ones included: the gateway reuses records only while it stands still. */
  let revision = 0;

  function requireProvider(id: string): StoredProvider {
    const stored = providers.get(id);
    if (!stored) throw new GatewayError("not_found", `No provider has the id '${id}'.`, { param: "id" });
    return stored;
  }

  function seal(providerId: string, secretName: string, value: string): string {
    return secretBox.seal(value, secretContext(providerId, secretName));
  }

  return {
    async create(input: CreateProviderInput) {
      revision += 1;
      const parsed = parseInput(createProviderInputSchema, input, "provider");
      const id = parsed.id ?? createId("prv");
      if (providers.has(id)) {
        throw new GatewayError("conflict", `A provider with the id '${id}' already exists.`, { param: "id" });
      }
      if (idsByName.has(nameKey(parsed.owner, parsed.name))) {
        throw new GatewayError("conflict", `'${parsed.owner}' already has a provider named '${parsed.name}'.`, {
          param: "name",
        });
      }
      const settings = normalizeProviderSettings(parsed.settings ?? {});
      const sealedSecrets = new Map<string, string>();
      for (const [secretName, value] of Object.entries(parsed.secrets ?? {})) {
        sealedSecrets.set(secretName, seal(id, secretName, value));
      }
      const now = clock.now();
      const record: ProviderRecord = {
        id,
        kind: parsed.kind,
        owner: parsed.owner,
        name: parsed.name,
        description: parsed.description ?? null,
        tags: [...(parsed.tags ?? [])],
        status: parsed.status ?? "unknown",
        statusReason: parsed.statusReason ?? null,
        settings,
        secretNames: sortedNames(sealedSecrets),
        createdAt: now,
        updatedAt: now,
        version: 1,
      };
      providers.set(id, { record, sealedSecrets });
      idsByName.set(nameKey(record.owner, record.name), id);
      events.publish("provider-create", copyRecord(record));
      return copyRecord(record);
    },

    async get(id: string) {
      const providerId = parseField(providerIdSchema, id, "id", "provider lookup");
      const stored = providers.get(providerId);
      return stored ? copyRecord(stored.record) : null;
    },

    async findByName(input: { owner: string; name: string }) {
      const fields = parseArgumentObject(input, ["owner", "name"], "provider lookup");
      const owner = parseField(principalIdSchema, fields.owner, "owner", "provider lookup");
      const name = parseField(providerNameSchema, fields.name, "name", "provider lookup");
      const id = idsByName.get(nameKey(owner, name));
      const stored = id === undefined ? undefined : providers.get(id);
      return stored ? copyRecord(stored.record) : null;
    },

    async list(filter?: ListProvidersFilter) {
      const fields = parseArgumentObject(filter ?? {}, ["owner", "kind", "ids"], "provider filter");
      const owner =
        fields.owner === undefined ? undefined : parseField(principalIdSchema, fields.owner, "owner", "provider filter");
      const kind =
        fields.kind === undefined
          ? undefined
          : parseField(createProviderInputSchema.shape.kind, fields.kind, "kind", "provider filter");
      const ids =
        fields.ids === undefined
          ? undefined
          : new Set(parseField(providerIdSchema.array(), fields.ids, "ids", "provider filter"));
      const matches: ProviderRecord[] = [];
      for (const { record } of providers.values()) {
        if (owner !== undefined && record.owner !== owner) continue;
        if (kind !== undefined && record.kind !== kind) continue;
        if (ids !== undefined && !ids.has(record.id)) continue;
        matches.push(copyRecord(record));
      }
      return matches.sort((left, right) => compareText(left.owner, right.owner) || compareText(left.name, right.name));
    },

    async update(id: string, patch: UpdateProviderInput, updateOptions?: UpdateProviderOptions) {
      revision += 1;
      const providerId = parseField(providerIdSchema, id, "id", "provider update");
      const parsed = parseInput(updateProviderInputSchema, patch, "provider update");
      const optionFields = parseArgumentObject(updateOptions ?? {}, ["expectedVersion"], "update options");
      const expectedVersion =
        optionFields.expectedVersion === undefined
          ? undefined
          : parseWholeNumber(optionFields.expectedVersion, "expectedVersion", "update options");

      const stored = requireProvider(providerId);
      const current = stored.record;
      if (expectedVersion !== undefined && expectedVersion !== current.version) {
        throw new GatewayError(
          "conflict",
          `The provider changed: it is at version ${current.version}, not ${expectedVersion}.`,
          { param: "expectedVersion" },
        );
      }

      // Build the next state completely before touching the stored one, so a failure part-way
      // (a name clash, a secret that cannot be sealed) leaves nothing half-applied.
      const { next, changed: fieldsChanged } = applyProviderPatch(current, parsed);
      let changed = fieldsChanged;
      if (next.name !== current.name && idsByName.has(nameKey(current.owner, next.name))) {
        throw new GatewayError("conflict", `'${current.owner}' already has a provider named '${next.name}'.`, {
          param: "name",
        });
      }
      let sealedSecrets = stored.sealedSecrets;
      if (parsed.secrets !== undefined) {
        const merged = new Map(stored.sealedSecrets);
        let secretsChanged = false;
        for (const [secretName, value] of Object.entries(parsed.secrets)) {
          const existing = merged.get(secretName);
          if (value === null) {
            if (existing !== undefined) {
              merged.delete(secretName);
              secretsChanged = true;
            }
          } else if (existing === undefined || !sealsValue(existing, providerId, secretName, value)) {
            merged.set(secretName, seal(providerId, secretName, value));
            secretsChanged = true;
          }
        }
        if (secretsChanged) {
          sealedSecrets = merged;
          next.secretNames = sortedNames(merged);
          changed = true;
        }
      }
      if (!changed) return copyRecord(current);

      next.version = current.version + 1;
      next.updatedAt = clock.now();
      if (next.name !== current.name) {
        idsByName.delete(nameKey(current.owner, current.name));
        idsByName.set(nameKey(next.owner, next.name), providerId);
      }
      providers.set(providerId, { record: next, sealedSecrets });
      events.publish("provider-update", copyRecord(next));
      if (next.status !== current.status) {
        events.publish("provider-status-change", { provider: copyRecord(next), previous: current.status });
      }
      return copyRecord(next);
    },

    async delete(id: string) {
      revision += 1;
      const providerId = parseField(providerIdSchema, id, "id", "provider deletion");
      const stored = providers.get(providerId);
      if (!stored) return false;
      providers.delete(providerId);
      idsByName.delete(nameKey(stored.record.owner, stored.record.name));
      events.publish("provider-delete", copyRecord(stored.record));
      return true;
    },

    revision: () => revision,

    async readSecrets(id: string) {
      const providerId = parseField(providerIdSchema, id, "id", "secret lookup");
      const stored = requireProvider(providerId);
      const secrets: Record<string, string> = {};
      for (const [secretName, sealed] of stored.sealedSecrets) {
        secrets[secretName] = secretBox.open(sealed, secretContext(providerId, secretName));
      }
      return secrets;
    },

    inspect() {
      const dump = [...providers.values()].map(({ record, sealedSecrets }) => ({
        record,
        sealedSecrets: Object.fromEntries(sealedSecrets),
      }));
      return JSON.stringify({ providers: dump, idsByName: Object.fromEntries(idsByName) }, null, 2);
    },
  };

  /** Whether a stored sealed secret already holds `value`, so re-sending the same key is no change. */
  function sealsValue(sealed: string, providerId: string, secretName: string, value: string): boolean {
    try {
      return secretBox.open(sealed, secretContext(providerId, secretName)) === value;
    } catch {
      // Sealed under another key: whatever it held, the new value replaces it.
      return false;
    }
  }
}

/** The associated data binding a sealed secret to its provider and name (see `createSecretBox`). */
function secretContext(providerId: string, secretName: string): string {
  return `${providerId}:${secretName}`;
}

function nameKey(owner: string, name: string): string {
  return `${owner}/${name}`;
}

function sortedNames(secrets: Map<string, string>): string[] {
  return [...secrets.keys()].sort(compareText);
}

/**
 * A caller's own copy of a stored record. By hand rather than `structuredClone`: a record is plain
 * JSON (settings are normalized to JSON on the way in), and this runs on every gateway request,
 * where structuredClone's fixed cost was 5% of the gateway's CPU (`npm run bench` profiles).
 */
function copyRecord(record: ProviderRecord): ProviderRecord {
  return { ...record, tags: [...record.tags], secretNames: [...record.secretNames], settings: copyJsonObject(record.settings) };
}

function copyJsonObject(value: Record<string, unknown>): Record<string, unknown> {
  const copy: Record<string, unknown> = {};
  for (const key of Object.keys(value)) {
    // JSON may name a key "__proto__"; assigning it would set the copy's prototype instead.
    if (key === "__proto__") Object.defineProperty(copy, key, { value: copyJson(value[key]), enumerable: true, writable: true, configurable: true });
    else copy[key] = copyJson(value[key]);
  }
  return copy;
}

function copyJson(value: unknown): unknown {
  if (typeof value !== "object" || value === null) return value;
  if (Array.isArray(value)) return value.map(copyJson);
  return copyJsonObject(value as Record<string, unknown>);
}
