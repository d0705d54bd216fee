import type { AllocationBalance } from "../budget/budget-ledger.js";
import type { IdentifyInput } from "../gateway/gateway-options.js";
import type { Grant } from "../permissions/permission-store.js";
import type { ActorInput, ActorProfile } from "./actor-profile.js";
import type { ConnectInfo, ConnectInput } from "./connect-info.js";
import type { CreateManagedAllocationInput, ListAllocationsInput, UpdateManagedAllocationInput } from "./manage-allocations.js";
import type { CreatedKeyView, CreateManagedKeyInput, KeyInput, KeyView, ListKeysInput } from "./manage-keys.js";
import type {
  CreateManagedProviderInput,
  DeletedProvider,
  ListProvidersInput,
  ProviderInput,
  UpdateManagedProviderInput,
} from "./manage-providers.js";
import type { GrantChangeInput, RevokedGrant } from "./manage-sharing.js";
import type { ProviderView } from "./provider-view.js";
import type { OrganizationUsageInput, PersonalUsage, UsageInput, UsageSummary } from "./usage-report.js";

/**
 * What a platform's users do around the gateway (SPEC.md): add, share and remove providers,
 * create and revoke their AI keys, and read their usage; admins also manage allocations and read
 * the organization's usage. `gateway.management` serves it to host code;
 * `createManagementNodeHandler` serves the same calls as a JSON HTTP API.
 *
 * Every method takes one options object whose `actor` is the user the host has authenticated,
 * and enforces what that user may do itself:
 * - Input is validated: a 400 `invalid_request` names the field at fault (`settings.endpoint`).
 * - An actor Sluice does not know (never mirrored with `upsertUser`) gets a 403.
 * - A provider the actor may neither use nor manage is answered exactly as a missing one (404);
 *   one they may use but not manage answers 403 to every change.
 * - Keys are their owner's alone: another user's key id is unknown (404).
 * - Name clashes (a provider name per owner, a live key name per user) are 409 `conflict`.
 * - Changes take effect on the next gateway request: a revoked grant or key, a lowered limit.
 * - Each change emits exactly one event from the store that made it (`provider-create`,
 *   `provider-update`, `provider-delete`, `grant-change`, `key-create`, `key-revoke`,
 *   `allocation-change`); a change that changes nothing emits none.
 * Errors are GatewayErrors, which the HTTP API sends in OpenAI's error shape.
 */
export interface Management {
  /**
   * The user behind an HTTP request, from the host's `identify` hook (its login session), or
   * null. AI keys identify no one here: the management API is for the host's signed-in users.
   */
  identify(input: IdentifyInput): Promise<string | null>;

  /** The actor's roles and groups, and what they may therefore do. */
  me(input: ActorInput): Promise<ActorProfile>;

  /** The providers the actor may use (`scope: "use"`, the chat page's list) or manage, with status and models. */
  listProviders(input: ListProvidersInput): Promise<ProviderView[]>;
  /**
   * Creates a provider owned by the actor. Needs `aiprovider:create` (admins hold it). The
   * kind's adapter validates `settings` and `secrets`; tunnel providers cannot be created (400).
   */
  createProvider(input: CreateManagedProviderInput): Promise<ProviderView>;
  /** One provider the actor may use or manage, with its models; never its secrets. */
  getProvider(input: ProviderInput): Promise<ProviderView>;
  /**
   * Changes name, description, tags, settings (merged) or secrets. Owner or org admin; kind and
   * owner are fixed; tunnels refuse (403). A new endpoint or key serves the next request.
   */
  updateProvider(input: UpdateManagedProviderInput): Promise<ProviderView>;
  /** Deletes the provider, its grants and its live connections. Owner or org admin; not tunnels. */
  deleteProvider(input: ProviderInput): Promise<DeletedProvider>;
  /** Rediscovers the provider's models and checks its health. Owner or org admin. */
  discoverModels(input: ProviderInput): Promise<ProviderView>;

  /** The provider's grants. Owner or org admin. */
  listGrants(input: ProviderInput): Promise<Grant[]>;
  /** Grants `aiprovider:use` to a group or the organization. Owner or org admin; idempotent. */
  grant(input: GrantChangeInput): Promise<Grant>;
  /** Revokes a grant: its users lose access on their next request. Owner or org admin; idempotent. */
  revokeGrant(input: GrantChangeInput): Promise<RevokedGrant>;

  /**
   * Creates an AI key for the actor, drawing from an allocation they may draw from (the
   * organization's or one of their groups'; else 403). Its secret is returned this once.
   */
  createKey(input: CreateManagedKeyInput): Promise<CreatedKeyView>;
  /** The actor's keys, newest first, optionally filtered by name. */
  listKeys(input: ListKeysInput): Promise<KeyView[]>;
  /** Revokes one of the actor's keys; its next request is refused. Idempotent. */
  revokeKey(input: KeyInput): Promise<KeyView>;

  /** The allocations the actor may draw from, with limit, spent, reserved and remaining; `all` for admins. */
  listAllocations(input: ListAllocationsInput): Promise<AllocationBalance[]>;
  /** Creates an allocation for a group or the organization. Org admins only. */
  createAllocation(input: CreateManagedAllocationInput): Promise<AllocationBalance>;
  /** Changes an allocation's name, limit or period; a cut holds from the next request. Org admins only. */
  updateAllocation(input: UpdateManagedAllocationInput): Promise<AllocationBalance>;

  /** The actor's usage over the last N UTC days or a range: totals, per day, and by model or key. */
  usage(input: UsageInput): Promise<PersonalUsage>;
  /** The organization's usage, by model, user or allocation, with each row's share. Org admins only. */
  organizationUsage(input: OrganizationUsageInput): Promise<UsageSummary>;

  /** The base URL, the actor's model ids, and SDK and curl snippets for connecting a tool. */
  connect(input: ConnectInput): Promise<ConnectInfo>;
}
