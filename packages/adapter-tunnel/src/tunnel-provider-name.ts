import { createHash } from "node:crypto";

const providerIdPrefix = "tun_";
const maxNameLength = 63;

/** A tunnel's provider id: `tun_<tunnel id>`, stable for the tunnel's whole life. */
export function tunnelProviderId(tunnelId: string): string {
  return `${providerIdPrefix}${tunnelId}`;
}

/** The tunnel id inside a tunnel provider's id, or null for any other id. */
export function tunnelIdOfProvider(providerId: string): string | null {
  return providerId.startsWith(providerIdPrefix) && providerId.length > providerIdPrefix.length ? providerId.slice(providerIdPrefix.length) : null;
}

/**
 * The provider name for a session (core's providerNameSchema: 1-63 of `A-Za-z0-9._-`, starting
 * with a letter or digit): the session's name with every other character turned into `-`, so
 * `alice's notebook` becomes `alice-s-notebook` and the model id `alice:alice-s-notebook/llama`.
 */
export function sessionProviderName(sessionName: string): string {
  const cleaned = sessionName
    // Accents off (`Ü` to `U`) rather than whole letters turned into dashes.
    .normalize("NFKD")
    .replace(/\p{M}+/gu, "")
    .replace(/[^A-Za-z0-9._-]+/g, "-")
    .replace(/^[^A-Za-z0-9]+/, "")
    .slice(0, maxNameLength)
    .replace(/[-._]+$/, "");
  return cleaned === "" ? "tunnel" : cleaned;
}

/**
 * The name to fall back to when the owner already has a provider called `name`: a short, stable
 * suffix from the tunnel id, so the same tunnel always lands on the same fallback.
 */
export function fallbackProviderName(name: string, tunnelId: string): string {
  const suffix = createHash("sha256").update(tunnelId).digest("hex").slice(0, 6);
  return `${name.slice(0, maxNameLength - suffix.length - 1)}-${suffix}`;
}
