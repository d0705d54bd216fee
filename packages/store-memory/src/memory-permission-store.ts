import {
  AIPROVIDER_USE,
  createEventBus,
  GatewayError,
  grantSubjectSchema,
  groupIdSchema,
  parseArgumentObject,
  parseChoice,
  parseField,
  parseProviderRef,
  parseFlag,
  parseInput,
  principalIdSchema,
  providerRefSchema,
  roles,
  systemClock,
  upsertGroupInputSchema,
  upsertUserInputSchema,
} from "@sluice/core";
import type {
  Clock,
  Grant,
  GrantInput,
  GrantSubject,
  Group,
  PermissionStore,
  ProviderRef,
  SluiceEventBus,
  User,
} from "@sluice/core";
import { compareText } from "./compare-text.js";

export interface MemoryPermissionStoreOptions {
  clock?: Clock;
  events?: SluiceEventBus;
}

export type MemoryPermissionStore = PermissionStore & {
  /** Everything stored, as JSON text. For conformance tests. */
  inspect(): string;
};

/** The one provider kind nobody but its owner may use or share. */
const TUNNEL_KIND = "openai-tunnel";

/** The key of the organization grant among a provider's grants; group grants use `group:<id>`. */
const ORGANIZATION_SUBJECT = "organization";

/** Users, groups, memberships and grants held in process memory. */
export function createMemoryPermissionStore(options: MemoryPermissionStoreOptions = {}): MemoryPermissionStore {
  const clock = options.clock ?? systemClock;
  const events = options.events ?? createEventBus();
  const users = new Map<string, User>();
  const groups = new Map<string, Group>();
  /** Group id -> member user ids, and the reverse index, so `canUse` never scans groups. */
  const membersByGroup = new Map<string, Set<string>>();
  const groupsByUser = new Map<string, Set<string>>();
  /** Bumped by every mutation, failed ones included: the gateway reuses answers only while it stands still. */
  let revision = 0;
  /** Provider id -> subject key -> grant. */
  const grantsByProvider = new Map<string, Map<string, Grant>>();

  function isAdmin(userId: string): boolean {
    return users.get(userId)?.roles.includes("org:admin") ?? false;
  }

  function mayManage(userId: string, provider: ProviderRef): boolean {
    if (provider.owner === userId) return true;
    return provider.kind !== TUNNEL_KIND && isAdmin(userId);
  }

  /** The checks grant and revoke share: tunnels are never shared, and only managers change sharing. */
  function requireSharingChange(input: GrantInput, what: string) {
    const fields = parseArgumentObject(input, ["actor", "provider", "subject"], what);
    const actor = parseField(principalIdSchema, fields.actor, "actor", what);
    const provider = parseProviderRef(fields.provider, what);
    const subject = parseField(grantSubjectSchema, fields.subject, "subject", what);
    if (provider.kind === TUNNEL_KIND) {
      throw new GatewayError("sharing_not_supported", "A session tunnel belongs to its owner alone and cannot be shared.");
    }
    if (!mayManage(actor, provider)) {
      throw new GatewayError("permission_denied", "Only the provider's owner or an organization admin may change its sharing.");
    }
    return { actor, provider, subject };
  }

  return {
    async upsertUser(input) {
      revision += 1;
      const parsed = parseInput(upsertUserInputSchema, input, "user");
      const existing = users.get(parsed.id);
      if (existing) {
        // An absent display name leaves the stored one; only an explicit null clears it.
        if (parsed.displayName !== undefined) existing.displayName = parsed.displayName;
        return copyUser(existing);
      }
      const user: User = { id: parsed.id, displayName: parsed.displayName ?? null, roles: [], createdAt: clock.now() };
      users.set(user.id, user);
      return copyUser(user);
    },

    async getUser(id) {
      const userId = parseField(principalIdSchema, id, "id", "user lookup");
      const user = users.get(userId);
      return user ? copyUser(user) : null;
    },

    async listUsers() {
      return [...users.values()].map(copyUser).sort((left, right) => compareText(left.id, right.id));
    },

    async setRole(input) {
      revision += 1;
      const fields = parseArgumentObject(input, ["userId", "role", "enabled"], "role change");
      const userId = parseField(principalIdSchema, fields.userId, "userId", "role change");
      const role = parseChoice(roles, fields.role, "role", "role change");
      const enabled = parseFlag(fields.enabled, "enabled", "role change");
      const user = users.get(userId);
      if (!user) throw new GatewayError("not_found", `No user has the id '${userId}'.`, { param: "userId" });
      const held = user.roles.includes(role);
      if (enabled && !held) user.roles = roles.filter((known) => known === role || user.roles.includes(known));
      if (!enabled && held) user.roles = user.roles.filter((known) => known !== role);
      return copyUser(user);
    },

    async hasRole(userId, role) {
      const wanted = parseChoice(roles, role, "role", "role check");
      // Any id no user has, malformed ones included, holds no role: a check never throws over it.
      const user = typeof userId === "string" ? users.get(userId) : undefined;
      if (!user) return false;
      // Admins create providers too: `org:admin` implies `aiprovider:create`.
      return user.roles.includes(wanted) || (wanted === "aiprovider:create" && user.roles.includes("org:admin"));
    },

    async upsertGroup(input) {
      revision += 1;
      const parsed = parseInput(upsertGroupInputSchema, input, "group");
      const existing = groups.get(parsed.id);
      if (existing) {
        existing.name = parsed.name;
        return { ...existing };
      }
      const group: Group = { id: parsed.id, name: parsed.name, createdAt: clock.now() };
      groups.set(group.id, group);
      return { ...group };
    },

    async getGroup(id) {
      const groupId = parseField(groupIdSchema, id, "id", "group lookup");
      const group = groups.get(groupId);
      return group ? { ...group } : null;
    },

    async listGroups() {
      return [...groups.values()].map((group) => ({ ...group })).sort((left, right) => compareText(left.id, right.id));
    },

    async deleteGroup(id) {
      revision += 1;
      const groupId = parseField(groupIdSchema, id, "id", "group deletion");
      if (!groups.delete(groupId)) return false;
      for (const userId of membersByGroup.get(groupId) ?? []) groupsByUser.get(userId)?.delete(groupId);
      membersByGroup.delete(groupId);
      const subjectKey = subjectKeyOf({ type: "group", groupId });
      for (const grants of grantsByProvider.values()) grants.delete(subjectKey);
      return true;
    },

    async addMember(input) {
      revision += 1;
      const { groupId, userId } = parseMembership(input, "membership");
      if (!groups.has(groupId)) throw new GatewayError("not_found", `No group has the id '${groupId}'.`, { param: "groupId" });
      if (!users.has(userId)) throw new GatewayError("not_found", `No user has the id '${userId}'.`, { param: "userId" });
      let members = membersByGroup.get(groupId);
      if (!members) membersByGroup.set(groupId, (members = new Set()));
      members.add(userId);
      let memberships = groupsByUser.get(userId);
      if (!memberships) groupsByUser.set(userId, (memberships = new Set()));
      memberships.add(groupId);
    },

    async removeMember(input) {
      revision += 1;
      const { groupId, userId } = parseMembership(input, "membership");
      const removed = membersByGroup.get(groupId)?.delete(userId) ?? false;
      groupsByUser.get(userId)?.delete(groupId);
      return removed;
    },

    async listMembers(groupId) {
      const id = parseField(groupIdSchema, groupId, "groupId", "member list");
      return [...(membersByGroup.get(id) ?? [])].sort(compareText);
    },

    async groupsOf(userId) {
      const id = parseField(principalIdSchema, userId, "userId", "group list");
      return [...(groupsByUser.get(id) ?? [])].sort(compareText);
    },

    async grant(input) {
      revision += 1;
      const { actor, provider, subject } = requireSharingChange(input, "grant");
      if (subject.type === "group" && !groups.has(subject.groupId)) {
        throw new GatewayError("not_found", `No group has the id '${subject.groupId}'.`, { param: "subject.groupId" });
      }
      let grants = grantsByProvider.get(provider.id);
      if (!grants) grantsByProvider.set(provider.id, (grants = new Map()));
      const subjectKey = subjectKeyOf(subject);
      const existing = grants.get(subjectKey);
      if (existing) return copyGrant(existing);
      const grant: Grant = {
        providerId: provider.id,
        permission: AIPROVIDER_USE,
        subject,
        grantedBy: actor,
        grantedAt: clock.now(),
      };
      grants.set(subjectKey, grant);
      events.publish("grant-change", { change: "granted", grant: copyGrant(grant), actor });
      return copyGrant(grant);
    },

    async revoke(input) {
      revision += 1;
      const { actor, provider, subject } = requireSharingChange(input, "revocation");
      const grants = grantsByProvider.get(provider.id);
      const subjectKey = subjectKeyOf(subject);
      const existing = grants?.get(subjectKey);
      if (!grants || !existing) return false;
      grants.delete(subjectKey);
      if (grants.size === 0) grantsByProvider.delete(provider.id);
      events.publish("grant-change", { change: "revoked", grant: copyGrant(existing), actor });
      return true;
    },

    async listGrants(input) {
      const fields = parseArgumentObject(input, ["actor", "provider"], "grant list");
      const actor = parseField(principalIdSchema, fields.actor, "actor", "grant list");
      const provider = parseProviderRef(fields.provider, "grant list");
      if (!mayManage(actor, provider)) {
        throw new GatewayError("permission_denied", "Only the provider's owner or an organization admin may read its sharing.");
      }
      // A tunnel has no grants to list: they are refused at `grant`.
      if (provider.kind === TUNNEL_KIND) return [];
      const grants = [...(grantsByProvider.get(provider.id)?.values() ?? [])].map(copyGrant);
      return grants.sort(compareGrants);
    },

    async forgetProvider(providerId) {
      revision += 1;
      const id = parseField(providerRefSchema.shape.id, providerId, "providerId", "provider removal");
      grantsByProvider.delete(id);
    },

    revision: () => revision,

    async canUse(userId, provider) {
      const ref = parseProviderRef(provider, "access check");
      if (ref.owner === userId) return true;
      if (ref.kind === TUNNEL_KIND || typeof userId !== "string" || !users.has(userId)) return false;
      const grants = grantsByProvider.get(ref.id);
      if (!grants) return false;
      if (grants.has(ORGANIZATION_SUBJECT)) return true;
      for (const groupId of groupsByUser.get(userId) ?? []) {
        if (grants.has(subjectKeyOf({ type: "group", groupId }))) return true;
      }
      return false;
    },

    async canManage(userId, provider) {
      const ref = parseProviderRef(provider, "management check");
      return typeof userId === "string" && mayManage(userId, ref);
    },

    inspect() {
      return JSON.stringify(
        {
          users: [...users.values()],
          groups: [...groups.values()],
          members: Object.fromEntries([...membersByGroup].map(([groupId, members]) => [groupId, [...members]])),
          grants: Object.fromEntries([...grantsByProvider].map(([providerId, grants]) => [providerId, [...grants.values()]])),
        },
        null,
        2,
      );
    },
  };
}

function parseMembership(input: unknown, what: string): { groupId: string; userId: string } {
  const fields = parseArgumentObject(input, ["groupId", "userId"], what);
  return {
    groupId: parseField(groupIdSchema, fields.groupId, "groupId", what),
    userId: parseField(principalIdSchema, fields.userId, "userId", what),
  };
}

function subjectKeyOf(subject: GrantSubject): string {
  return subject.type === "organization" ? ORGANIZATION_SUBJECT : `group:${subject.groupId}`;
}

/** The organization grant first, then group grants by group id. */
function compareGrants(left: Grant, right: Grant): number {
  if (left.subject.type === "organization") return right.subject.type === "organization" ? 0 : -1;
  if (right.subject.type === "organization") return 1;
  return compareText(left.subject.groupId, right.subject.groupId);
}

function copyUser(user: User): User {
  return { ...user, roles: [...user.roles] };
}

function copyGrant(grant: Grant): Grant {
  return { ...grant, subject: { ...grant.subject } };
}
