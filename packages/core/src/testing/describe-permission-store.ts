import { randomBytes } from "node:crypto";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createManualClock } from "../clock/clock.js";
import type { GatewayErrorCode } from "../errors/gateway-error.js";
import { createEventBus } from "../events/sluice-events.js";
import type { GrantChangeEvent } from "../events/sluice-events.js";
import type { GrantSubject, PermissionStore, Role } from "../permissions/permission-store.js";
import type { ProviderRef } from "../provider/provider-record.js";
import { createSecretBox } from "../provider/secret-box.js";
import type { StoreHarness, StoreHarnessContext, StoreUnderTest } from "./store-harness.js";
import { expectGatewayError, unchecked } from "./expect-gateway-error.js";

// The cast of every test: plain ids, so a failing assertion reads like the specification.
const owner = "owner";
const admin = "admin";
const member = "member";
const outsider = "outsider";
/** Well-formed, but never upserted. */
const stranger = "stranger";

const teamA = "team-a";
const teamB = "team-b";
const teamC = "team-c";

const provider: ProviderRef = { id: "prv_conformance_shared", owner, kind: "openai-compatible" };
const otherProvider: ProviderRef = { id: "prv_conformance_other", owner, kind: "azure-openai" };
const tunnel: ProviderRef = { id: "prv_conformance_tunnel", owner, kind: "openai-tunnel" };

function toGroup(groupId: string): GrantSubject {
  return { type: "group", groupId };
}

function toOrganization(): GrantSubject {
  return { type: "organization" };
}

/**
 * Runs the PermissionStore specification against one implementation. Call it once from a test
 * file: `describePermissionStore("memory", memoryHarness)`.
 */
export function describePermissionStore(name: string, harness: StoreHarness<PermissionStore>): void {
  describe(`PermissionStore conformance: ${name}`, () => {
    let context: StoreHarnessContext;
    let underTest: StoreUnderTest<PermissionStore> | undefined;
    let store: PermissionStore;

    beforeEach(async () => {
      context = {
        clock: createManualClock(),
        events: createEventBus(),
        secretBox: createSecretBox({ key: randomBytes(32) }),
      };
      underTest = await harness.create(context);
      store = underTest.store;
    });

    afterEach(async () => {
      await underTest?.close?.();
      underTest = undefined;
    });

    /** Owner, admin, member (of team-a), outsider; groups team-a and team-b. */
    async function seedOrganization(): Promise<void> {
      for (const id of [owner, admin, member, outsider]) await store.upsertUser({ id });
      await store.setRole({ userId: admin, role: "org:admin", enabled: true });
      await store.upsertGroup({ id: teamA, name: "Team A" });
      await store.upsertGroup({ id: teamB, name: "Team B" });
      await store.addMember({ groupId: teamA, userId: member });
    }

    function recordGrantChanges(): GrantChangeEvent[] {
      const seen: GrantChangeEvent[] = [];
      context.events.on("grant-change", (event) => {
        seen.push(event);
      });
      return seen;
    }

    async function usersWhoCanUse(target: ProviderRef, candidates: string[]): Promise<string[]> {
      const allowed: string[] = [];
      for (const userId of candidates) {
        if (await store.canUse(userId, target)) allowed.push(userId);
      }
      return allowed;
    }

    /** Every sharing call by `actor` is refused with `code`, and nothing changes. */
    async function expectSharingRefused(actor: string, target: ProviderRef, code: GatewayErrorCode): Promise<void> {
      const before = await store.listGrants({ actor: target.owner, provider: target });
      const changes = recordGrantChanges();
      await expectGatewayError(store.grant({ actor, provider: target, subject: toOrganization() }), code);
      await expectGatewayError(store.grant({ actor, provider: target, subject: toGroup(teamB) }), code);
      await expectGatewayError(store.revoke({ actor, provider: target, subject: toGroup(teamA) }), code);
      await expectGatewayError(store.revoke({ actor, provider: target, subject: toOrganization() }), code);
      expect(await store.listGrants({ actor: target.owner, provider: target })).toEqual(before);
      expect(changes).toEqual([]);
    }

    describe("users", () => {
      it("creates a user with no display name and no roles, stamped with the clock", async () => {
        const user = await store.upsertUser({ id: owner });

        expect(user).toEqual({ id: owner, displayName: null, roles: [], createdAt: context.clock.now() });
        expect(await store.getUser(owner)).toEqual(user);
      });

      it("updates a user's display name and keeps their roles and creation time", async () => {
        const created = await store.upsertUser({ id: owner, displayName: "Olga" });
        await store.setRole({ userId: owner, role: "org:admin", enabled: true });
        context.clock.advance(60_000);

        const updated = await store.upsertUser({ id: owner, displayName: "Olga Owner" });

        expect(updated).toEqual({ id: owner, displayName: "Olga Owner", roles: ["org:admin"], createdAt: created.createdAt });
        expect(await store.getUser(owner)).toEqual(updated);
      });

      it("returns null for a user that was never upserted", async () => {
        await store.upsertUser({ id: owner });

        expect(await store.getUser(stranger)).toBeNull();
      });

      it("lists every known user", async () => {
        expect(await store.listUsers()).toEqual([]);
        await store.upsertUser({ id: outsider });
        await store.upsertUser({ id: owner, displayName: "Olga" });
        await store.upsertUser({ id: owner, displayName: "Olga again" });

        const users = await store.listUsers();

        expect(users.map((user) => user.id).sort()).toEqual([outsider, owner]);
        expect(users.find((user) => user.id === owner)?.displayName).toBe("Olga again");
      });
    });

    describe("roles", () => {
      it("gives and takes a role idempotently", async () => {
        await store.upsertUser({ id: admin });

        await store.setRole({ userId: admin, role: "org:admin", enabled: true });
        const givenTwice = await store.setRole({ userId: admin, role: "org:admin", enabled: true });
        expect(givenTwice.roles).toEqual(["org:admin"]);

        await store.setRole({ userId: admin, role: "org:admin", enabled: false });
        const takenTwice = await store.setRole({ userId: admin, role: "org:admin", enabled: false });
        expect(takenTwice.roles).toEqual([]);
        expect((await store.getUser(admin))?.roles).toEqual([]);
      });

      it("holds several roles at once", async () => {
        await store.upsertUser({ id: admin });

        await store.setRole({ userId: admin, role: "aiprovider:create", enabled: true });
        const both = await store.setRole({ userId: admin, role: "org:admin", enabled: true });

        expect(sortedRoles(both.roles)).toEqual(["aiprovider:create", "org:admin"]);
        expect(sortedRoles((await store.getUser(admin))?.roles ?? [])).toEqual(["aiprovider:create", "org:admin"]);
      });

      it("answers hasRole from the roles given, and false for unknown users", async () => {
        await store.upsertUser({ id: owner });
        await store.setRole({ userId: owner, role: "aiprovider:create", enabled: true });

        expect(await store.hasRole(owner, "aiprovider:create")).toBe(true);
        expect(await store.hasRole(owner, "org:admin")).toBe(false);
        expect(await store.hasRole(stranger, "aiprovider:create")).toBe(false);
        expect(await store.hasRole(stranger, "org:admin")).toBe(false);
      });

      it("treats an org admin as holding aiprovider:create, for as long as they are admin", async () => {
        await store.upsertUser({ id: admin });
        await store.setRole({ userId: admin, role: "org:admin", enabled: true });

        expect(await store.hasRole(admin, "org:admin")).toBe(true);
        expect(await store.hasRole(admin, "aiprovider:create")).toBe(true);

        await store.setRole({ userId: admin, role: "org:admin", enabled: false });
        expect(await store.hasRole(admin, "aiprovider:create")).toBe(false);
      });

      it("keeps an explicit aiprovider:create when the admin role is taken away", async () => {
        await store.upsertUser({ id: admin });
        await store.setRole({ userId: admin, role: "aiprovider:create", enabled: true });
        await store.setRole({ userId: admin, role: "org:admin", enabled: true });

        await store.setRole({ userId: admin, role: "org:admin", enabled: false });

        expect(await store.hasRole(admin, "aiprovider:create")).toBe(true);
      });

      it("refuses to set a role on an unknown user with a 404", async () => {
        await expectGatewayError(store.setRole({ userId: stranger, role: "org:admin", enabled: true }), "not_found");
        expect(await store.getUser(stranger)).toBeNull();
      });
    });

    describe("groups", () => {
      it("creates a group stamped with the clock", async () => {
        const group = await store.upsertGroup({ id: teamA, name: "Team A" });

        expect(group).toEqual({ id: teamA, name: "Team A", createdAt: context.clock.now() });
        expect(await store.getGroup(teamA)).toEqual(group);
      });

      it("returns null for an unknown group", async () => {
        await store.upsertGroup({ id: teamA, name: "Team A" });

        expect(await store.getGroup(teamB)).toBeNull();
      });

      it("renames a group by upserting it again, keeping its creation time", async () => {
        const created = await store.upsertGroup({ id: teamA, name: "Team A" });
        context.clock.advance(60_000);

        const renamed = await store.upsertGroup({ id: teamA, name: "Platform team" });

        expect(renamed).toEqual({ id: teamA, name: "Platform team", createdAt: created.createdAt });
        expect(await store.getGroup(teamA)).toEqual(renamed);
      });

      it("keeps a group's members and grants when it is renamed", async () => {
        await seedOrganization();
        await store.grant({ actor: owner, provider, subject: toGroup(teamA) });

        await store.upsertGroup({ id: teamA, name: "Platform team" });

        expect(await store.listMembers(teamA)).toEqual([member]);
        expect(await store.canUse(member, provider)).toBe(true);
      });

      it("lists every group", async () => {
        expect(await store.listGroups()).toEqual([]);
        await store.upsertGroup({ id: teamB, name: "Team B" });
        await store.upsertGroup({ id: teamA, name: "Team A" });

        const groups = await store.listGroups();

        expect(groups.map((group) => group.id).sort()).toEqual([teamA, teamB]);
      });

      it("deletes a group idempotently", async () => {
        await store.upsertGroup({ id: teamA, name: "Team A" });

        expect(await store.deleteGroup(teamA)).toBe(true);
        expect(await store.deleteGroup(teamA)).toBe(false);
        expect(await store.deleteGroup(teamB)).toBe(false);
        expect(await store.getGroup(teamA)).toBeNull();
        expect(await store.listGroups()).toEqual([]);
      });

      it("drops a deleted group's memberships and grants", async () => {
        await seedOrganization();
        await store.addMember({ groupId: teamB, userId: member });
        await store.grant({ actor: owner, provider, subject: toGroup(teamA) });
        await store.grant({ actor: owner, provider, subject: toGroup(teamB) });

        await store.deleteGroup(teamA);

        expect(await store.groupsOf(member)).toEqual([teamB]);
        expect(await store.listMembers(teamA)).toEqual([]);
        expect((await store.listGrants({ actor: owner, provider })).map((grant) => grant.subject)).toEqual([toGroup(teamB)]);
      });

      it("does not bring memberships or grants back when a deleted group's id is reused", async () => {
        await seedOrganization();
        await store.grant({ actor: owner, provider, subject: toGroup(teamA) });
        await store.deleteGroup(teamA);

        await store.upsertGroup({ id: teamA, name: "Team A, again" });

        expect(await store.listMembers(teamA)).toEqual([]);
        expect(await store.listGrants({ actor: owner, provider })).toEqual([]);
        expect(await store.canUse(member, provider)).toBe(false);
      });
    });

    describe("membership", () => {
      beforeEach(seedOrganization);

      it("adds a member idempotently", async () => {
        await store.addMember({ groupId: teamB, userId: outsider });
        await store.addMember({ groupId: teamB, userId: outsider });

        expect(await store.listMembers(teamB)).toEqual([outsider]);
        expect(await store.groupsOf(outsider)).toEqual([teamB]);
      });

      it("removes a member, resolving whether there was a membership to remove", async () => {
        expect(await store.removeMember({ groupId: teamA, userId: member })).toBe(true);
        expect(await store.removeMember({ groupId: teamA, userId: member })).toBe(false);
        expect(await store.removeMember({ groupId: teamA, userId: outsider })).toBe(false);

        expect(await store.listMembers(teamA)).toEqual([]);
        expect(await store.groupsOf(member)).toEqual([]);
      });

      it("refuses to add a member to an unknown group with a 404", async () => {
        await expectGatewayError(store.addMember({ groupId: teamC, userId: member }), "not_found");
        expect(await store.groupsOf(member)).toEqual([teamA]);
      });

      it("refuses to add an unknown user to a group with a 404", async () => {
        await expectGatewayError(store.addMember({ groupId: teamB, userId: stranger }), "not_found");
        expect(await store.listMembers(teamB)).toEqual([]);
      });

      it("lists a group's members sorted by id", async () => {
        await store.addMember({ groupId: teamB, userId: owner });
        await store.addMember({ groupId: teamB, userId: outsider });
        await store.addMember({ groupId: teamB, userId: admin });

        expect(await store.listMembers(teamB)).toEqual([admin, outsider, owner]);
      });

      it("lists a user's groups sorted by id", async () => {
        await store.upsertGroup({ id: teamC, name: "Team C" });
        await store.addMember({ groupId: teamC, userId: outsider });
        await store.addMember({ groupId: teamA, userId: outsider });
        await store.addMember({ groupId: teamB, userId: outsider });

        expect(await store.groupsOf(outsider)).toEqual([teamA, teamB, teamC]);
      });

      it("lists no members for an unknown group and no groups for an unknown user", async () => {
        expect(await store.listMembers(teamC)).toEqual([]);
        expect(await store.groupsOf(stranger)).toEqual([]);
      });
    });

    describe("a provider's privacy", () => {
      beforeEach(seedOrganization);

      it("keeps a provider private to its owner until it is shared", async () => {
        // Membership of every group and the admin role give no access without a grant.
        await store.addMember({ groupId: teamB, userId: member });
        await store.addMember({ groupId: teamA, userId: admin });

        expect(await usersWhoCanUse(provider, [owner, admin, member, outsider, stranger])).toEqual([owner]);
        expect(await store.listGrants({ actor: owner, provider })).toEqual([]);
      });

      it("keeps grants on one provider from reaching another", async () => {
        await store.grant({ actor: owner, provider, subject: toGroup(teamA) });
        await store.grant({ actor: owner, provider, subject: toOrganization() });

        expect(await usersWhoCanUse(otherProvider, [owner, admin, member, outsider])).toEqual([owner]);
        expect(await store.listGrants({ actor: owner, provider: otherProvider })).toEqual([]);
      });
    });

    describe("sharing with a group", () => {
      beforeEach(seedOrganization);

      it("lets the members of a granted group use the provider, and nobody else", async () => {
        await store.grant({ actor: owner, provider, subject: toGroup(teamA) });

        expect(await usersWhoCanUse(provider, [owner, admin, member, outsider, stranger])).toEqual([owner, member]);
      });

      it("lets users in every granted group use the provider", async () => {
        await store.addMember({ groupId: teamB, userId: outsider });

        await store.grant({ actor: owner, provider, subject: toGroup(teamA) });
        await store.grant({ actor: owner, provider, subject: toGroup(teamB) });

        expect(await usersWhoCanUse(provider, [owner, admin, member, outsider])).toEqual([owner, member, outsider]);
      });

      it("applies membership changes on the next canUse", async () => {
        await store.grant({ actor: owner, provider, subject: toGroup(teamA) });

        await store.addMember({ groupId: teamA, userId: outsider });
        expect(await store.canUse(outsider, provider)).toBe(true);

        await store.removeMember({ groupId: teamA, userId: outsider });
        expect(await store.canUse(outsider, provider)).toBe(false);
      });

      it("stops the group's members using the provider once the grant is revoked", async () => {
        await store.grant({ actor: owner, provider, subject: toGroup(teamA) });

        await store.revoke({ actor: owner, provider, subject: toGroup(teamA) });

        expect(await usersWhoCanUse(provider, [owner, admin, member, outsider])).toEqual([owner]);
      });

      it("keeps access for a user through a second granted group when one grant is revoked", async () => {
        await store.addMember({ groupId: teamB, userId: member });
        await store.grant({ actor: owner, provider, subject: toGroup(teamA) });
        await store.grant({ actor: owner, provider, subject: toGroup(teamB) });

        await store.revoke({ actor: owner, provider, subject: toGroup(teamA) });

        expect(await store.canUse(member, provider)).toBe(true);
      });

      it("refuses a grant to an unknown group with a 404", async () => {
        const changes = recordGrantChanges();

        await expectGatewayError(store.grant({ actor: owner, provider, subject: toGroup(teamC) }), "not_found");

        expect(await store.listGrants({ actor: owner, provider })).toEqual([]);
        expect(changes).toEqual([]);
      });
    });

    describe("sharing with the organization", () => {
      beforeEach(seedOrganization);

      it("lets every known user use the provider, but not unknown ids", async () => {
        await store.grant({ actor: owner, provider, subject: toOrganization() });

        expect(await usersWhoCanUse(provider, [owner, admin, member, outsider, stranger])).toEqual([
          owner,
          admin,
          member,
          outsider,
        ]);
      });

      it("reaches users who join the organization after the grant", async () => {
        await store.grant({ actor: owner, provider, subject: toOrganization() });
        expect(await store.canUse(stranger, provider)).toBe(false);

        await store.upsertUser({ id: stranger });

        expect(await store.canUse(stranger, provider)).toBe(true);
      });

      it("stops the organization using the provider once the grant is revoked", async () => {
        await store.grant({ actor: owner, provider, subject: toOrganization() });

        await store.revoke({ actor: owner, provider, subject: toOrganization() });

        expect(await usersWhoCanUse(provider, [owner, admin, member, outsider])).toEqual([owner]);
      });
    });

    describe("who may manage sharing", () => {
      beforeEach(seedOrganization);

      it("lets the owner and org admins manage a provider, and nobody else", async () => {
        expect(await store.canManage(owner, provider)).toBe(true);
        expect(await store.canManage(admin, provider)).toBe(true);
        expect(await store.canManage(member, provider)).toBe(false);
        expect(await store.canManage(outsider, provider)).toBe(false);
        expect(await store.canManage(stranger, provider)).toBe(false);
      });

      it("stops an org admin managing sharing once the admin role is taken away", async () => {
        await store.setRole({ userId: admin, role: "org:admin", enabled: false });

        expect(await store.canManage(admin, provider)).toBe(false);
        await expectSharingRefused(admin, provider, "permission_denied");
      });

      it("does not let aiprovider:create manage other users' providers", async () => {
        await store.setRole({ userId: outsider, role: "aiprovider:create", enabled: true });

        expect(await store.canManage(outsider, provider)).toBe(false);
        await expectSharingRefused(outsider, provider, "permission_denied");
      });

      it("lets the owner grant, list and revoke", async () => {
        const grant = await store.grant({ actor: owner, provider, subject: toGroup(teamA) });

        expect(await store.listGrants({ actor: owner, provider })).toEqual([grant]);
        expect(await store.revoke({ actor: owner, provider, subject: toGroup(teamA) })).toBe(true);
        expect(await store.listGrants({ actor: owner, provider })).toEqual([]);
      });

      it("lets an org admin grant, list and revoke on a provider they do not own", async () => {
        const grant = await store.grant({ actor: admin, provider, subject: toOrganization() });

        expect(grant.grantedBy).toBe(admin);
        expect(await store.listGrants({ actor: admin, provider })).toEqual([grant]);
        expect(await store.revoke({ actor: admin, provider, subject: toOrganization() })).toBe(true);
        expect(await store.listGrants({ actor: admin, provider })).toEqual([]);
      });

      it("refuses grant, revoke and listGrants to a member of a granted group with a 403", async () => {
        await store.grant({ actor: owner, provider, subject: toGroup(teamA) });

        await expectSharingRefused(member, provider, "permission_denied");
        await expectGatewayError(store.listGrants({ actor: member, provider }), "permission_denied");
      });

      it("refuses grant, revoke and listGrants to a user with an organization grant with a 403", async () => {
        await store.grant({ actor: owner, provider, subject: toOrganization() });

        await expectSharingRefused(outsider, provider, "permission_denied");
        await expectGatewayError(store.listGrants({ actor: outsider, provider }), "permission_denied");
      });

      it("refuses grant, revoke and listGrants to an unrelated user with a 403", async () => {
        await expectSharingRefused(outsider, provider, "permission_denied");
        await expectGatewayError(store.listGrants({ actor: outsider, provider }), "permission_denied");
      });

      it("refuses grant, revoke and listGrants to an unknown user id with a 403", async () => {
        await expectSharingRefused(stranger, provider, "permission_denied");
        await expectGatewayError(store.listGrants({ actor: stranger, provider }), "permission_denied");
      });
    });

    describe("grants", () => {
      beforeEach(seedOrganization);

      it("records who granted and when", async () => {
        const grant = await store.grant({ actor: owner, provider, subject: toGroup(teamA) });

        expect(grant).toEqual({
          providerId: provider.id,
          permission: "aiprovider:use",
          subject: toGroup(teamA),
          grantedBy: owner,
          grantedAt: context.clock.now(),
        });
      });

      it("grants idempotently, keeping the first grant's author and time", async () => {
        const changes = recordGrantChanges();
        const first = await store.grant({ actor: owner, provider, subject: toGroup(teamA) });
        context.clock.advance(60_000);

        const repeated = await store.grant({ actor: admin, provider, subject: toGroup(teamA) });

        expect(repeated).toEqual(first);
        expect(await store.listGrants({ actor: owner, provider })).toEqual([first]);
        expect(changes).toHaveLength(1);
      });

      it("revokes once, resolving whether a grant existed", async () => {
        const changes = recordGrantChanges();
        expect(await store.revoke({ actor: owner, provider, subject: toGroup(teamA) })).toBe(false);
        await store.grant({ actor: owner, provider, subject: toGroup(teamA) });

        expect(await store.revoke({ actor: owner, provider, subject: toGroup(teamA) })).toBe(true);
        expect(await store.revoke({ actor: owner, provider, subject: toGroup(teamA) })).toBe(false);

        expect(changes.map((change) => change.change)).toEqual(["granted", "revoked"]);
      });

      it("revokes only the grant it names", async () => {
        await store.grant({ actor: owner, provider, subject: toGroup(teamA) });
        const organizationGrant = await store.grant({ actor: owner, provider, subject: toOrganization() });

        expect(await store.revoke({ actor: owner, provider, subject: toGroup(teamB) })).toBe(false);
        await store.revoke({ actor: owner, provider, subject: toGroup(teamA) });

        expect(await store.listGrants({ actor: owner, provider })).toEqual([organizationGrant]);
      });

      it("publishes grant-change with the grant and the actor", async () => {
        const changes = recordGrantChanges();
        const grant = await store.grant({ actor: owner, provider, subject: toGroup(teamA) });
        context.clock.advance(60_000);

        await store.revoke({ actor: admin, provider, subject: toGroup(teamA) });

        // The revoked event carries the grant that was removed; `actor` says who removed it.
        expect(changes).toEqual([
          { change: "granted", grant, actor: owner },
          { change: "revoked", grant, actor: admin },
        ]);
      });

      it("can grant again after a revoke, as a new grant", async () => {
        await store.grant({ actor: owner, provider, subject: toGroup(teamA) });
        await store.revoke({ actor: owner, provider, subject: toGroup(teamA) });
        context.clock.advance(60_000);

        const again = await store.grant({ actor: admin, provider, subject: toGroup(teamA) });

        expect(again).toMatchObject({ grantedBy: admin, grantedAt: context.clock.now() });
        expect(await store.canUse(member, provider)).toBe(true);
      });

      it("lists the organization grant first, then group grants by group id", async () => {
        await store.upsertGroup({ id: teamC, name: "Team C" });
        await store.grant({ actor: owner, provider, subject: toGroup(teamC) });
        await store.grant({ actor: owner, provider, subject: toGroup(teamA) });
        await store.grant({ actor: owner, provider, subject: toOrganization() });
        await store.grant({ actor: owner, provider, subject: toGroup(teamB) });

        const grants = await store.listGrants({ actor: owner, provider });

        expect(grants.map((grant) => grant.subject)).toEqual([
          toOrganization(),
          toGroup(teamA),
          toGroup(teamB),
          toGroup(teamC),
        ]);
      });

      it("forgets every grant of a deleted provider, idempotently", async () => {
        await store.grant({ actor: owner, provider, subject: toGroup(teamA) });
        await store.grant({ actor: owner, provider, subject: toOrganization() });
        const kept = await store.grant({ actor: owner, provider: otherProvider, subject: toGroup(teamA) });

        await store.forgetProvider(provider.id);
        await store.forgetProvider(provider.id);
        await store.forgetProvider("prv_conformance_never_seen");

        expect(await store.listGrants({ actor: owner, provider })).toEqual([]);
        expect(await usersWhoCanUse(provider, [member, outsider])).toEqual([]);
        expect(await store.listGrants({ actor: owner, provider: otherProvider })).toEqual([kept]);
      });
    });

    describe("tunnel providers", () => {
      beforeEach(seedOrganization);

      it("refuses every grant and revoke with 403 sharing_not_supported, even the owner's and an admin's", async () => {
        await expectSharingRefused(owner, tunnel, "sharing_not_supported");
        await expectSharingRefused(admin, tunnel, "sharing_not_supported");
        await expectSharingRefused(outsider, tunnel, "sharing_not_supported");
      });

      it("shows the owner an empty grant list and refuses it to everyone else", async () => {
        expect(await store.listGrants({ actor: owner, provider: tunnel })).toEqual([]);
        await expectGatewayError(store.listGrants({ actor: admin, provider: tunnel }), "permission_denied");
        await expectGatewayError(store.listGrants({ actor: outsider, provider: tunnel }), "permission_denied");
        await expectGatewayError(store.listGrants({ actor: stranger, provider: tunnel }), "permission_denied");
      });

      it("lets only the owner use a tunnel", async () => {
        await store.grant({ actor: owner, provider, subject: toOrganization() });
        await store.grant({ actor: owner, provider, subject: toGroup(teamA) });

        expect(await usersWhoCanUse(tunnel, [owner, admin, member, outsider, stranger])).toEqual([owner]);
      });

      it("lets only the owner use a tunnel even when grants are filed under its id", async () => {
        // The store sees only the ref it is given: a tunnel's kind outweighs any grant on its id.
        const sameIdAsShared: ProviderRef = { ...tunnel, id: provider.id };
        await store.grant({ actor: owner, provider, subject: toOrganization() });

        expect(await usersWhoCanUse(sameIdAsShared, [owner, admin, member, outsider])).toEqual([owner]);
      });

      it("lets only the owner manage a tunnel", async () => {
        expect(await store.canManage(owner, tunnel)).toBe(true);
        expect(await store.canManage(admin, tunnel)).toBe(false);
        expect(await store.canManage(member, tunnel)).toBe(false);
        expect(await store.canManage(stranger, tunnel)).toBe(false);
      });
    });

    describe("input validation", () => {
      it("rejects a user id containing ':' or '/'", async () => {
        await expectGatewayError(store.upsertUser({ id: "team:lead" }), "invalid_request", "id");
        await expectGatewayError(store.upsertUser({ id: "team/lead" }), "invalid_request", "id");
        await expectGatewayError(store.upsertUser({ id: "" }), "invalid_request", "id");

        expect(await store.listUsers()).toEqual([]);
      });

      it("rejects an empty group id or one with white space", async () => {
        await expectGatewayError(store.upsertGroup({ id: "", name: "Nameless" }), "invalid_request", "id");
        await expectGatewayError(store.upsertGroup({ id: "team a", name: "Team A" }), "invalid_request", "id");

        expect(await store.listGroups()).toEqual([]);
      });

      it("rejects an empty group name", async () => {
        await expectGatewayError(store.upsertGroup({ id: teamA, name: "" }), "invalid_request", "name");
      });

      it("rejects a role that does not exist", async () => {
        await store.upsertUser({ id: owner });

        await expectGatewayError(
          store.setRole({ userId: owner, role: unchecked<Role>("superuser"), enabled: true }),
          "invalid_request",
          "role",
        );
      });

      it("rejects a grant subject of an unknown type", async () => {
        await seedOrganization();
        const changes = recordGrantChanges();

        await expectGatewayError(
          store.grant({ actor: owner, provider, subject: unchecked<GrantSubject>({ type: "team", groupId: teamA }) }),
          "invalid_request",
          "subject.type",
        );

        expect(await store.listGrants({ actor: owner, provider })).toEqual([]);
        expect(changes).toEqual([]);
      });

      it("rejects a group grant with an empty group id", async () => {
        await seedOrganization();

        await expectGatewayError(
          store.grant({ actor: owner, provider, subject: toGroup("") }),
          "invalid_request",
          "subject.groupId",
        );
      });

      it("rejects unknown extra keys, naming them", async () => {
        const userError = await expectGatewayError(
          store.upsertUser(unchecked<{ id: string }>({ id: owner, email: "owner@example.com" })),
          "invalid_request",
        );
        expect(userError.message).toContain("email");

        const groupError = await expectGatewayError(
          store.upsertGroup(unchecked<{ id: string; name: string }>({ id: teamA, name: "Team A", parent: teamB })),
          "invalid_request",
        );
        expect(groupError.message).toContain("parent");

        expect(await store.listUsers()).toEqual([]);
        expect(await store.listGroups()).toEqual([]);
      });
    });

    describe("returned objects are copies", () => {
      beforeEach(seedOrganization);

      it("does not let a caller change a stored user through a returned one", async () => {
        const upserted = await store.upsertUser({ id: owner });
        upserted.roles.push("org:admin");
        const returned = await store.setRole({ userId: owner, role: "aiprovider:create", enabled: true });
        returned.roles.push("org:admin");
        returned.displayName = "Mallory";
        const read = await store.getUser(owner);
        read?.roles.splice(0);
        const listed = await store.listUsers();
        for (const user of listed) user.roles.push("org:admin");

        expect(await store.getUser(owner)).toMatchObject({ displayName: null, roles: ["aiprovider:create"] });
        expect(await store.hasRole(owner, "org:admin")).toBe(false);
        expect(await store.hasRole(outsider, "org:admin")).toBe(false);
      });

      it("does not let a caller change a stored group through a returned one", async () => {
        const returned = await store.upsertGroup({ id: teamC, name: "Team C" });
        returned.name = "Renamed behind the store's back";
        const listed = await store.listGroups();
        for (const group of listed) group.name = "Renamed";

        expect((await store.getGroup(teamC))?.name).toBe("Team C");
        expect((await store.getGroup(teamA))?.name).toBe("Team A");
      });

      it("does not let a caller change memberships through returned lists", async () => {
        const members = await store.listMembers(teamA);
        members.push(outsider);
        const groups = await store.groupsOf(member);
        groups.push(teamB);

        expect(await store.listMembers(teamA)).toEqual([member]);
        expect(await store.groupsOf(member)).toEqual([teamA]);
      });

      it("does not let a caller change a stored grant through a returned one or its input", async () => {
        const subject: GrantSubject = toGroup(teamA);
        const granted = await store.grant({ actor: owner, provider, subject });
        if (subject.type === "group") subject.groupId = teamB;
        granted.grantedBy = outsider;
        if (granted.subject.type === "group") granted.subject.groupId = teamB;
        const listed = await store.listGrants({ actor: owner, provider });
        for (const grant of listed) grant.providerId = otherProvider.id;

        expect(await store.listGrants({ actor: owner, provider })).toEqual([
          expect.objectContaining({ providerId: provider.id, subject: toGroup(teamA), grantedBy: owner }),
        ]);
        expect(await store.canUse(member, provider)).toBe(true);
        expect(await store.canUse(outsider, provider)).toBe(false);
      });
    });
  });
}

function sortedRoles(roles: readonly Role[]): Role[] {
  return [...roles].sort();
}

