import type { CreateProviderInput, ProviderKind, ProviderRecord, UpdateProviderInput } from "./provider-record.js";

export interface ListProvidersFilter {
  owner?: string;
  kind?: ProviderKind;
  ids?: readonly string[];
}

export interface UpdateProviderOptions {
  /** Refuse the update with a 409 unless the record is still at this version. */
  expectedVersion?: number;
}

/**
 * The stored provider records, per owner, with their settings and upstream secrets.
 *
 * Names are unique per owner: a `create` or rename that clashes throws a 409 `conflict`, and two
 * concurrent creates of one name leave exactly one record. Secrets are encrypted at rest with the
 * host's key (see `createSecretBox`) and no read returns them; only `readSecrets` does, for the
 * adapter that calls the upstream. Every method validates its input and throws a 400 on bad input.
 * Emits `provider-create`, `provider-update`, `provider-status-change` and `provider-delete`.
 */
export interface ProviderCatalog {
  /** Stores a new provider. Throws 409 on an (owner, name) or id clash. */
  create(input: CreateProviderInput): Promise<ProviderRecord>;

  /** The record, or null when no provider has that id. */
  get(id: string): Promise<ProviderRecord | null>;

  /** The owner's provider of that name, or null. */
  findByName(input: { owner: string; name: string }): Promise<ProviderRecord | null>;

  /** Records matching every given filter, ordered by owner then name. */
  list(filter?: ListProvidersFilter): Promise<ProviderRecord[]>;

  /**
   * Applies a partial update and returns the new record. Throws 404 for an unknown id, 409 on a
   * name clash or a stale `expectedVersion`. A status change also emits `provider-status-change`.
   */
  update(id: string, patch: UpdateProviderInput, options?: UpdateProviderOptions): Promise<ProviderRecord>;

  /** Deletes the provider and its secrets. Idempotent: resolves false when it was already gone. */
  delete(id: string): Promise<boolean>;

  /**
   * The decrypted secrets, for the adapter that calls the upstream. Never expose the result
   * through an API. Throws 404 for an unknown id.
   */
  readSecrets(id: string): Promise<Record<string, string>>;

  /**
   * Optional. A number that changes whenever any answer of this store may have changed: after
   * every create, update (a status change included) and delete. While it stays the same the
   * gateway may reuse the records it found for earlier requests. Only a store that sees every
   * change can have one, such as one held in the gateway's own process; a store shared by
   * several processes leaves it out, and is then asked on every request.
   */
  revision?(): number;
}
