import { z } from "zod";
import { isPrincipalId, principalIdSchema, providerKinds } from "../provider/provider-record.js";
import type { ProviderKind, ProviderRef } from "../provider/provider-record.js";
import { parseField } from "../validation/parse-arguments.js";

/**
 * Organization-wide roles. `org:admin` manages every provider's sharing, allocations and the
 * organization's usage, and implies `aiprovider:create`, the platform permission to create and
 * manage providers of one's own.
 */
export const roles = ["org:admin", "aiprovider:create"] as const;
export type Role = (typeof roles)[number];

/** The one permission a provider can be shared with. */
export const AIPROVIDER_USE = "aiprovider:use";

export interface User {
  id: string;
  displayName: string | null;
  roles: Role[];
  createdAt: number;
}

export interface Group {
  id: string;
  name: string;
  createdAt: number;
}

/** Who a grant reaches: the members of one group, or everyone in the organization. */
export type GrantSubject = { type: "group"; groupId: string } | { type: "organization" };

export interface Grant {
  providerId: string;
  permission: typeof AIPROVIDER_USE;
  subject: GrantSubject;
  grantedBy: string;
  grantedAt: number;
}

export const groupIdSchema = z
  .string({ error: "must be a string" })
  .min(1, { error: "must not be empty" })
  .max(200, { error: "must be at most 200 characters" })
  .regex(/^[^\s]+$/, { error: "must not contain white space" });

export const grantSubjectSchema = z.discriminatedUnion("type", [
  z.strictObject({ type: z.literal("group"), groupId: groupIdSchema }),
  z.strictObject({ type: z.literal("organization") }),
]);

export const providerRefSchema = z.object({
  id: z.string().min(1),
  owner: principalIdSchema,
  kind: z.enum(providerKinds),
});

/**
 * A provider reference as the stores take it (`providerRefSchema`'s parse: its three fields, and
 * nothing else). The access check runs on every request, and zod's object parse cost a few
 * microseconds of it; a reference that is plainly well formed is copied without zod, and anything
 * else goes through the schema, which words the 400.
 */
export function parseProviderRef(value: unknown, what: string): ProviderRef {
  if (typeof value === "object" && value !== null && !Array.isArray(value)) {
    // Each field is read once: a getter must not answer the check and the copy differently.
    const { id, owner, kind } = value as Record<string, unknown>;
    if (typeof id === "string" && id !== "" && isPrincipalId(owner) && providerKinds.includes(kind as ProviderKind)) {
      return { id, owner, kind: kind as ProviderKind };
    }
  }
  return parseField(providerRefSchema, value, "provider", what);
}

export const upsertUserInputSchema = z.strictObject({
  id: principalIdSchema,
  displayName: z.string().max(200).nullable().optional(),
});

export const upsertGroupInputSchema = z.strictObject({
  id: groupIdSchema,
  name: z.string().min(1).max(200),
});

export interface GrantInput {
  /** The user performing the change: the provider's owner or an org admin. */
  actor: string;
  provider: ProviderRef;
  subject: GrantSubject;
}

/**
 * Users, groups and membership, the organization's roles, and grants of `aiprovider:use`.
 *
 * Semantics every implementation keeps:
 * - A provider is private to its owner: with no grant, `canUse` is true for the owner alone.
 *   Admins manage sharing but do not use a provider by being admins; they hold a grant like anyone.
 * - Only the owner or an org admin may grant, revoke, or read a provider's grants; anyone else
 *   gets a 403 `permission_denied`.
 * - Tunnel providers (`openai-tunnel`) belong to their owner alone: every grant is refused with a
 *   403 `sharing_not_supported`, even the owner's, and `canUse` is true only for the owner.
 * - Membership and grant changes take effect on the next `canUse`.
 * - `grant` and `revoke` are idempotent; `revoke` resolves whether a grant was removed.
 * - Reads return null for unknown ids; mutations throw 404 `not_found` for an unknown user or group.
 * Emits `grant-change` for every grant or revoke that changed something.
 */
export interface PermissionStore {
  /** Creates the user or updates their display name. Users are the host's; Sluice mirrors them. */
  upsertUser(input: z.input<typeof upsertUserInputSchema>): Promise<User>;
  getUser(id: string): Promise<User | null>;
  listUsers(): Promise<User[]>;

  /** Gives or takes a role. Throws 404 for an unknown user. Idempotent. */
  setRole(input: { userId: string; role: Role; enabled: boolean }): Promise<User>;
  /** Whether the user holds the role (admins hold `aiprovider:create` too). False for unknown users. */
  hasRole(userId: string, role: Role): Promise<boolean>;

  upsertGroup(input: z.input<typeof upsertGroupInputSchema>): Promise<Group>;
  getGroup(id: string): Promise<Group | null>;
  listGroups(): Promise<Group[]>;
  /** Deletes the group with its memberships and every grant to it. Idempotent. */
  deleteGroup(id: string): Promise<boolean>;

  /** Idempotent. Throws 404 when the group or the user is unknown. */
  addMember(input: { groupId: string; userId: string }): Promise<void>;
  /** Idempotent; resolves whether a membership was removed. */
  removeMember(input: { groupId: string; userId: string }): Promise<boolean>;
  listMembers(groupId: string): Promise<string[]>;
  /** The ids of the groups the user belongs to (empty for an unknown user). */
  groupsOf(userId: string): Promise<string[]>;

  /** Grants `aiprovider:use`. 403 unless the actor may manage the provider; 404 for an unknown group. */
  grant(input: GrantInput): Promise<Grant>;
  /** Revokes a grant; resolves whether one existed. 403 unless the actor may manage the provider. */
  revoke(input: GrantInput): Promise<boolean>;
  /** The provider's grants. 403 unless the actor may manage the provider. */
  listGrants(input: { actor: string; provider: ProviderRef }): Promise<Grant[]>;
  /** Drops every grant on a deleted provider. Idempotent. */
  forgetProvider(providerId: string): Promise<void>;

  /** Whether the user may see and call the provider. Never throws for unknown users: false. */
  canUse(userId: string, provider: ProviderRef): Promise<boolean>;
  /** Whether the user may read and change the provider's sharing (its owner, or an org admin). */
  canManage(userId: string, provider: ProviderRef): Promise<boolean>;

  /**
   * Optional. A number that changes whenever any answer of this store may have changed, for
   * every caller: after every user, role, group, membership or grant change. While it stays the
   * same the gateway may reuse what the store told it for earlier requests (`groupsOf`,
   * `canUse`). Only a store that sees every change can have one, such as one held in the
   * gateway's own process; a store shared by several processes leaves it out, and is then asked
   * on every request.
   */
  revision?(): number;
}
