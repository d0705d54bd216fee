import { isDeepStrictEqual } from "node:util";
import { GatewayError } from "../errors/gateway-error.js";
import type { ProviderRecord, UpdateProviderInput } from "./provider-record.js";

/**
 * Settings as they are stored: plain JSON (a Date becomes its ISO string, `undefined` members
 * go), so every store keeps exactly what a JSON column would and compares like with like. A 400
 * naming `settings` for anything JSON cannot hold.
 */
export function normalizeProviderSettings(settings: Record<string, unknown>): Record<string, unknown> {
  try {
    return JSON.parse(JSON.stringify(settings)) as Record<string, unknown>;
  } catch (error) {
    throw new GatewayError("invalid_request", "Invalid provider: 'settings' must be plain JSON", {
      param: "settings",
      cause: error,
    });
  }
}

/**
 * Applies a validated patch's record fields (not its secrets, which each store seals its own
 * way) and says whether anything changed: the catalog contract answers a no-op patch with the
 * record as it was, no version bump and no event, and every store must agree on what a no-op is.
 * `next` is a new object; the caller sets its version and time when `changed`.
 */
export function applyProviderPatch(
  current: ProviderRecord,
  patch: Omit<UpdateProviderInput, "secrets">,
): { next: ProviderRecord; changed: boolean } {
  const next: ProviderRecord = { ...current };
  let changed = false;
  if (patch.name !== undefined && patch.name !== current.name) {
    next.name = patch.name;
    changed = true;
  }
  if (patch.description !== undefined && patch.description !== current.description) {
    next.description = patch.description;
    changed = true;
  }
  if (patch.tags !== undefined && !isDeepStrictEqual(patch.tags, current.tags)) {
    next.tags = [...patch.tags];
    changed = true;
  }
  if (patch.status !== undefined && patch.status !== current.status) {
    next.status = patch.status;
    changed = true;
  }
  if (patch.statusReason !== undefined && patch.statusReason !== current.statusReason) {
    next.statusReason = patch.statusReason;
    changed = true;
  }
  if (patch.settings !== undefined) {
    const settings = normalizeProviderSettings(patch.settings);
    if (!isDeepStrictEqual(settings, current.settings)) {
      next.settings = settings;
      changed = true;
    }
  }
  return { next, changed };
}
