import type { PermissionStore } from "../permissions/permission-store.js";
import type { ProviderCatalog } from "../provider/provider-catalog.js";
import type { ProviderRecord } from "../provider/provider-record.js";

interface Remembered<T> {
  catalog: number;
  permissions: number;
  value: T;
}

/**
 * What the catalog and the permission store told earlier requests, reused while neither has
 * changed since: the provider a caller may use under a name, and the caller's groups. Every
 * request asks them the same questions, and cold, at one connection, those answers were the
 * largest part of what the gateway's policy costs (bench/RESULTS.md, sessions 9 and 10).
 *
 * Only stores with a `revision()` take part, and an answer is reused only under the revisions
 * read before it was asked, so a grant revoked, a member removed or a provider stopped while
 * a request was being answered is seen by the next request, as without this. A store without
 * revisions (one shared by several gateway processes) is asked every time.
 */
export class StoreAnswers {
  readonly #catalog: ProviderCatalog;
  readonly #permissions: PermissionStore;
  readonly #capacity: number;
  readonly #usable = new Map<string, Remembered<ProviderRecord | null>>();
  readonly #groups = new Map<string, Remembered<string[]>>();

  constructor(catalog: ProviderCatalog, permissions: PermissionStore, capacity = 10_000) {
    this.#catalog = catalog;
    this.#permissions = permissions;
    this.#capacity = capacity;
  }

  /**
   * The owner's provider of that name when the user may use it; null when there is none or the
   * user may not use it. `owner` and `name` must have passed their schemas, which keep '/' out
   * of both: read from the right, the key then names one (user, owner, name) whatever the user
   * id holds. The record is shared between requests: read it, never change it.
   */
  usableProvider(userId: string, owner: string, name: string): Promise<ProviderRecord | null> {
    return this.#remember(this.#usable, `${userId}/${owner}/${name}`, async () => {
      const record = await this.#catalog.findByName({ owner, name });
      return record !== null && (await this.#permissions.canUse(userId, record)) ? record : null;
    });
  }

  /** The ids of the user's groups. Shared between requests: read it, never change it. */
  groupsOf(userId: string): Promise<string[]> {
    return this.#remember(this.#groups, userId, () => this.#permissions.groupsOf(userId));
  }

  async #remember<T>(answers: Map<string, Remembered<T>>, key: string, ask: () => Promise<T>): Promise<T> {
    const catalog = this.#catalog.revision?.();
    const permissions = this.#permissions.revision?.();
    if (catalog === undefined || permissions === undefined) return ask();
    const known = answers.get(key);
    if (known !== undefined && known.catalog === catalog && known.permissions === permissions) return known.value;
    const value = await ask();
    // Forgetting everything at the bound is crude but cheap; the callers in use come back at once.
    if (answers.size >= this.#capacity) answers.clear();
    answers.set(key, { catalog, permissions, value });
    return value;
  }
}
