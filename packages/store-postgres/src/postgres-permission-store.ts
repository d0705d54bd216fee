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
  Role,
  SluiceEventBus,
  User,
} from "@sluice/core";
import type pg from "pg";
import { EVERYTHING, createCacheInvalidation } from "./cache-invalidation.js";
import type { CacheInvalidation } from "./cache-invalidation.js";
import { readInteger } from "./database-values.js";
import { resolveCacheOptions } from "./postgres-cache-options.js";
import type { PostgresCacheOptions } from "./postgres-cache-options.js";
import { isForeignKeyViolation, refusingNulText } from "./postgres-errors.js";
import { createTaggedCache } from "./tagged-cache.js";
import type { Queryable } from "./with-transaction.js";
import { withTransaction } from "./with-transaction.js";

export interface PostgresPermissionStoreOptions {
  /** The pool to query; the caller owns it (closing the store does not end it). */
  pool: pg.Pool;
  clock?: Clock;
  events?: SluiceEventBus;
  cache?: PostgresCacheOptions | false;
}

export type PostgresPermissionStore = PermissionStore & {
  /** Stops listening for other instances' changes. Idempotent. */
  close(): Promise<void>;
};

interface UserRow {
  id: string;
  display_name: string | null;
  roles: string[];
  created_at: string;
}

interface GroupRow {
  id: string;
  name: string;
  created_at: string;
}

interface GrantRow {
  provider_id: string;
  subject_type: "organization" | "group";
  group_id: string | null;
  granted_by: string;
  granted_at: string;
}

/** The one provider kind nobody but its owner may use or share. */
const TUNNEL_KIND = "openai-tunnel";

/**
 * The hot-path answers this store caches: a user's roles, a user's groups, and whether a user may
 * use a provider.
 */
type CachedAnswer = { roles: Role[] | null } | { groups: readonly string[] } | { canUse: boolean };

/** Users, groups, memberships and grants in PostgreSQL, shared by every gateway instance. */
export function createPostgresPermissionStore(options: PostgresPermissionStoreOptions): PostgresPermissionStore {
  const { cache, channel } = resolveCacheOptions(options.cache);
  const invalidation = createCacheInvalidation({ pool: options.pool, channel, listen: cache !== null });
  const store = createPermissionStoreOn({ ...options, invalidation });
  return { ...store, close: () => invalidation.close() };
}

/** The permission store over a shared invalidation channel (one per instance, from createPostgresStores). */
export function createPermissionStoreOn(
  options: PostgresPermissionStoreOptions & { invalidation: CacheInvalidation },
): PermissionStore {
  const { pool, invalidation } = options;
  const clock = options.clock ?? systemClock;
  const events = options.events ?? createEventBus();
  const { cache } = resolveCacheOptions(options.cache);
  const answers = cache === null ? null : createTaggedCache<CachedAnswer>(cache);
  if (answers !== null) invalidation.register(answers);

  /** Runs a change and, when it changed something, tells every instance's caches under `tag`. */
  async function change<Result>(
    work: (client: pg.PoolClient) => Promise<{ result: Result; changed: boolean }>,
    tag: string,
  ): Promise<{ result: Result; changed: boolean }> {
    const outcome = await withTransaction(pool, async (client) => {
      const done = await work(client);
      if (done.changed) await invalidation.announce(client, tag);
      return done;
    });
    if (outcome.changed) invalidation.applyLocally(tag);
    return outcome;
  }

  async function loadRoles(userId: string): Promise<Role[] | null> {
    const result = await pool.query<{ roles: string[] }>("SELECT roles FROM sluice_users WHERE id = $1", [userId]);
    const row = result.rows[0];
    return row === undefined ? null : (row.roles as Role[]);
  }

  /** The user's roles (null for an unknown user), from the cache when it has them. */
  async function rolesOf(userId: string): Promise<Role[] | null> {
    if (answers === null) return loadRoles(userId);
    const answer = await answers.read(
      `roles\n${userId}`,
      async () => ({ roles: await loadRoles(userId) }),
      () => [userTag(userId)],
    );
    return "roles" in answer ? answer.roles : null;
  }

  /** Whether the user is an org admin, read from the database: for changes, never from a cache. */
  async function isAdminNow(queryable: Queryable, userId: string): Promise<boolean> {
    const result = await queryable.query("SELECT 1 FROM sluice_users WHERE id = $1 AND 'org:admin' = ANY (roles)", [
      userId,
    ]);
    return result.rowCount !== null && result.rowCount > 0;
  }

  async function loadCanUse(userId: string, providerId: string): Promise<boolean> {
    const result = await pool.query<{ allowed: boolean }>(
      `SELECT EXISTS (SELECT 1 FROM sluice_users WHERE id = $1) AND (
         EXISTS (SELECT 1 FROM sluice_grants WHERE provider_id = $2 AND subject_type = 'organization')
         OR EXISTS (
           SELECT 1 FROM sluice_grants g
           JOIN sluice_group_members m ON m.group_id = g.group_id
           WHERE g.provider_id = $2 AND m.user_id = $1
         )
       ) AS allowed`,
      [userId, providerId],
    );
    return result.rows[0]?.allowed === true;
  }

  /** The checks grant and revoke share: tunnels are never shared, and only managers change sharing. */
  async function requireSharingChange(input: GrantInput, what: string) {
    const fields = parseArgumentObject(input, ["actor", "provider", "subject"], what);
    const actor = parseField(principalIdSchema, fields.actor, "actor", what);
    const provider = parseProviderRef(fields.provider, what);
    const subject = parseField(grantSubjectSchema, fields.subject, "subject", what);
    if (provider.kind === TUNNEL_KIND) {
      throw new GatewayError("sharing_not_supported", "A session tunnel belongs to its owner alone and cannot be shared.");
    }
    if (provider.owner !== actor && !(await isAdminNow(pool, actor))) {
      throw new GatewayError(
        "permission_denied",
        "Only the provider's owner or an organization admin may change its sharing.",
      );
    }
    return { actor, provider, subject };
  }

  return refusingNulText({
    async upsertUser(input) {
      const parsed = parseInput(upsertUserInputSchema, input, "user");
      const { result } = await change(async (client) => {
        // An absent display name leaves the stored one; only an explicit null clears it.
        const upserted = await client.query<UserRow & { inserted: boolean }>(
          `INSERT INTO sluice_users (id, display_name, roles, created_at) VALUES ($1, $2, '{}', $3)
           ON CONFLICT (id) DO UPDATE
             SET display_name = CASE WHEN $4 THEN EXCLUDED.display_name ELSE sluice_users.display_name END
           RETURNING *, (xmax = 0) AS inserted`,
          [parsed.id, parsed.displayName ?? null, clock.now(), parsed.displayName !== undefined],
        );
        const row = upserted.rows[0]!;
        // A new user joins the organization, which can change what organization grants reach.
        return { result: toUser(row), changed: row.inserted };
      }, userTag(parsed.id));
      return result;
    },

    async getUser(id) {
      const userId = parseField(principalIdSchema, id, "id", "user lookup");
      const result = await pool.query<UserRow>("SELECT * FROM sluice_users WHERE id = $1", [userId]);
      const row = result.rows[0];
      return row === undefined ? null : toUser(row);
    },

    async listUsers() {
      const result = await pool.query<UserRow>("SELECT * FROM sluice_users ORDER BY id");
      return result.rows.map(toUser);
    },

    async setRole(input) {
      const fields = parseArgumentObject(input, ["userId", "role", "enabled"], "role change");
      const userId = parseField(principalIdSchema, fields.userId, "userId", "role change");
      const role = parseChoice(roles, fields.role, "role", "role change");
      const enabled = parseFlag(fields.enabled, "enabled", "role change");
      const { result } = await change(async (client) => {
        const locked = await client.query<UserRow>("SELECT * FROM sluice_users WHERE id = $1 FOR NO KEY UPDATE", [userId]);
        const row = locked.rows[0];
        if (row === undefined) throw userNotFound(userId);
        const user = toUser(row);
        const held = user.roles.includes(role);
        if (enabled === held) return { result: user, changed: false };
        // Roles are kept in the order core declares them.
        user.roles = roles.filter((known) => (known === role ? enabled : user.roles.includes(known)));
        await client.query("UPDATE sluice_users SET roles = $2 WHERE id = $1", [userId, user.roles]);
        return { result: user, changed: true };
      }, userTag(userId));
      return result;
    },

    async hasRole(userId, role) {
      const wanted = parseChoice(roles, role, "role", "role check");
      // Any id no user has, malformed ones included, holds no role: a check never throws over it.
      if (typeof userId !== "string" || !principalIdSchema.safeParse(userId).success) return false;
      const held = await rolesOf(userId);
      if (held === null) return false;
      // Admins create providers too: `org:admin` implies `aiprovider:create`.
      return held.includes(wanted) || (wanted === "aiprovider:create" && held.includes("org:admin"));
    },

    async upsertGroup(input) {
      const parsed = parseInput(upsertGroupInputSchema, input, "group");
      const result = await pool.query<GroupRow>(
        `INSERT INTO sluice_groups (id, name, created_at) VALUES ($1, $2, $3)
         ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name
         RETURNING *`,
        [parsed.id, parsed.name, clock.now()],
      );
      return toGroup(result.rows[0]!);
    },

    async getGroup(id) {
      const groupId = parseField(groupIdSchema, id, "id", "group lookup");
      const result = await pool.query<GroupRow>("SELECT * FROM sluice_groups WHERE id = $1", [groupId]);
      const row = result.rows[0];
      return row === undefined ? null : toGroup(row);
    },

    async listGroups() {
      const result = await pool.query<GroupRow>("SELECT * FROM sluice_groups ORDER BY id");
      return result.rows.map(toGroup);
    },

    async deleteGroup(id) {
      const groupId = parseField(groupIdSchema, id, "id", "group deletion");
      // Memberships and grants go with the group (ON DELETE CASCADE). That can change many
      // users' access to many providers, so every instance drops every cached answer.
      const { changed } = await change(async (client) => {
        const deleted = await client.query("DELETE FROM sluice_groups WHERE id = $1", [groupId]);
        return { result: undefined, changed: deleted.rowCount === 1 };
      }, EVERYTHING);
      return changed;
    },

    async addMember(input) {
      const { groupId, userId } = parseMembership(input, "membership");
      try {
        await change(async (client) => {
          const added = await client.query<{ group_exists: boolean; user_exists: boolean; inserted: boolean }>(
            `WITH found_group AS (SELECT id FROM sluice_groups WHERE id = $1),
                  found_user AS (SELECT id FROM sluice_users WHERE id = $2),
                  inserted AS (
                    INSERT INTO sluice_group_members (group_id, user_id)
                    SELECT found_group.id, found_user.id FROM found_group, found_user
                    ON CONFLICT DO NOTHING
                    RETURNING 1
                  )
             SELECT EXISTS (SELECT 1 FROM found_group) AS group_exists,
                    EXISTS (SELECT 1 FROM found_user) AS user_exists,
                    EXISTS (SELECT 1 FROM inserted) AS inserted`,
            [groupId, userId],
          );
          const row = added.rows[0]!;
          if (!row.group_exists) throw groupNotFound(groupId, "groupId");
          if (!row.user_exists) throw userNotFound(userId);
          return { result: undefined, changed: row.inserted };
        }, userTag(userId));
      } catch (error) {
        // The group or the user was deleted between the check and the insert.
        if (isForeignKeyViolation(error)) throw groupNotFound(groupId, "groupId");
        throw error;
      }
    },

    async removeMember(input) {
      const { groupId, userId } = parseMembership(input, "membership");
      const { changed } = await change(async (client) => {
        const removed = await client.query("DELETE FROM sluice_group_members WHERE group_id = $1 AND user_id = $2", [
          groupId,
          userId,
        ]);
        return { result: undefined, changed: removed.rowCount === 1 };
      }, userTag(userId));
      return changed;
    },

    async listMembers(groupId) {
      const id = parseField(groupIdSchema, groupId, "groupId", "member list");
      const result = await pool.query<{ user_id: string }>(
        "SELECT user_id FROM sluice_group_members WHERE group_id = $1 ORDER BY user_id",
        [id],
      );
      return result.rows.map((row) => row.user_id);
    },

    async groupsOf(userId) {
      const id = parseField(principalIdSchema, userId, "userId", "group list");
      const load = async (): Promise<string[]> => {
        const result = await pool.query<{ group_id: string }>(
          "SELECT group_id FROM sluice_group_members WHERE user_id = $1 ORDER BY group_id",
          [id],
        );
        return result.rows.map((row) => row.group_id);
      };
      if (answers === null) return load();
      // Every request asks (to check the allocation it draws from). Filed under the user: each
      // membership change announces the user's tag, and a group's deletion drops everything.
      const answer = await answers.read(`groups\n${id}`, async () => ({ groups: await load() }), () => [userTag(id)]);
      return "groups" in answer ? [...answer.groups] : load();
    },

    async grant(input) {
      const { actor, provider, subject } = await requireSharingChange(input, "grant");
      const groupId = subject.type === "group" ? subject.groupId : null;
      const subjectKey = subjectKeyOf(subject);
      const { result, changed } = await change(async (client) => {
        if (groupId !== null) {
          // FOR KEY SHARE keeps the group from being deleted until this grant is committed.
          const group = await client.query("SELECT 1 FROM sluice_groups WHERE id = $1 FOR KEY SHARE", [groupId]);
          if (group.rowCount === 0) throw groupNotFound(groupId, "subject.groupId");
        }
        for (;;) {
          const inserted = await client.query<GrantRow>(
            `INSERT INTO sluice_grants (provider_id, subject_type, group_id, granted_by, granted_at)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (provider_id, subject_key) DO NOTHING
             RETURNING *`,
            [provider.id, subject.type, groupId, actor, clock.now()],
          );
          if (inserted.rows[0] !== undefined) return { result: toGrant(inserted.rows[0]), changed: true };
          // A repeat returns the original grant, its author and time included. This statement sees
          // the grant the insert collided with, unless a revoke removed it since: then insert again.
          const existing = await client.query<GrantRow>(
            "SELECT * FROM sluice_grants WHERE provider_id = $1 AND subject_key = $2",
            [provider.id, subjectKey],
          );
          if (existing.rows[0] !== undefined) return { result: toGrant(existing.rows[0]), changed: false };
        }
      }, providerTag(provider.id));
      if (changed) events.publish("grant-change", { change: "granted", grant: copyGrant(result), actor });
      return result;
    },

    async revoke(input) {
      const { actor, provider, subject } = await requireSharingChange(input, "revocation");
      const { result, changed } = await change(async (client) => {
        const revoked = await client.query<GrantRow>(
          "DELETE FROM sluice_grants WHERE provider_id = $1 AND subject_key = $2 RETURNING *",
          [provider.id, subjectKeyOf(subject)],
        );
        const row = revoked.rows[0];
        return { result: row === undefined ? null : toGrant(row), changed: row !== undefined };
      }, providerTag(provider.id));
      if (changed && result !== null) events.publish("grant-change", { change: "revoked", grant: result, actor });
      return changed;
    },

    async listGrants(input) {
      const fields = parseArgumentObject(input, ["actor", "provider"], "grant list");
      const actor = parseField(principalIdSchema, fields.actor, "actor", "grant list");
      const provider = parseProviderRef(fields.provider, "grant list");
      const mayManage = provider.owner === actor || (provider.kind !== TUNNEL_KIND && (await isAdminNow(pool, actor)));
      if (!mayManage) {
        throw new GatewayError(
          "permission_denied",
          "Only the provider's owner or an organization admin may read its sharing.",
        );
      }
      // A tunnel has no grants to list: they are refused at `grant`.
      if (provider.kind === TUNNEL_KIND) return [];
      const result = await pool.query<GrantRow>(
        `SELECT * FROM sluice_grants WHERE provider_id = $1
         ORDER BY subject_type = 'organization' DESC, group_id`,
        [provider.id],
      );
      return result.rows.map(toGrant);
    },

    async forgetProvider(providerId) {
      const id = parseField(providerRefSchema.shape.id, providerId, "providerId", "provider removal");
      await change(async (client) => {
        const deleted = await client.query("DELETE FROM sluice_grants WHERE provider_id = $1", [id]);
        return { result: undefined, changed: (deleted.rowCount ?? 0) > 0 };
      }, providerTag(id));
    },

    async canUse(userId, provider) {
      const ref = parseProviderRef(provider, "access check");
      if (ref.owner === userId) return true;
      if (ref.kind === TUNNEL_KIND || typeof userId !== "string") return false;
      // An id no user could have is an unknown user: false, never a throw.
      if (!principalIdSchema.safeParse(userId).success) return false;
      if (answers === null) return loadCanUse(userId, ref.id);
      const answer = await answers.read(
        `use\n${userId}\n${ref.id}`,
        async () => ({ canUse: await loadCanUse(userId, ref.id) }),
        () => [userTag(userId), providerTag(ref.id)],
      );
      return "canUse" in answer && answer.canUse;
    },

    async canManage(userId, provider) {
      const ref = parseProviderRef(provider, "management check");
      if (typeof userId !== "string") return false;
      if (ref.owner === userId) return true;
      if (ref.kind === TUNNEL_KIND || !principalIdSchema.safeParse(userId).success) return false;
      return (await rolesOf(userId))?.includes("org:admin") ?? false;
    },
  });
}

function userTag(userId: string): string {
  return `user:${userId}`;
}

function providerTag(providerId: string): string {
  return `provider:${providerId}`;
}

/** The grant's key among a provider's grants: the generated column `subject_key`. */
function subjectKeyOf(subject: GrantSubject): string {
  return subject.type === "organization" ? "organization" : `group:${subject.groupId}`;
}

function groupNotFound(groupId: string, param: string): GatewayError {
  return new GatewayError("not_found", `No group has the id '${groupId}'.`, { param });
}

function userNotFound(userId: string): GatewayError {
  return new GatewayError("not_found", `No user has the id '${userId}'.`, { param: "userId" });
}

function parseMembership(input: unknown, what: string): { groupId: string; userId: string } {
  const fields = parseArgumentObject(input, ["groupId", "userId"], what);
  return {
    groupId: parseField(groupIdSchema, fields.groupId, "groupId", what),
    userId: parseField(principalIdSchema, fields.userId, "userId", what),
  };
}

function toUser(row: UserRow): User {
  return {
    id: row.id,
    displayName: row.display_name,
    roles: row.roles as Role[],
    createdAt: readInteger(row.created_at, "sluice_users.created_at"),
  };
}

function toGroup(row: GroupRow): Group {
  return { id: row.id, name: row.name, createdAt: readInteger(row.created_at, "sluice_groups.created_at") };
}

function toGrant(row: GrantRow): Grant {
  const subject: GrantSubject =
    row.subject_type === "organization" ? { type: "organization" } : { type: "group", groupId: row.group_id! };
  return {
    providerId: row.provider_id,
    permission: AIPROVIDER_USE,
    subject,
    grantedBy: row.granted_by,
    grantedAt: readInteger(row.granted_at, "sluice_grants.granted_at"),
  };
}

function copyGrant(grant: Grant): Grant {
  return { ...grant, subject: { ...grant.subject } };
}
