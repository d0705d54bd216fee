import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { GatewayError, createId, systemClock } from "@sluice/core";
import type { Clock } from "@sluice/core";
import { parseUserId } from "../parse-tunnel.js";

/**
 * Tunnel token secrets: `st-sluice-` and 43 base64url characters (256 random bits). Like AI keys,
 * only a SHA-256 hash is stored: the entropy makes a fast hash safe, and a leaked store yields no
 * usable token. The prefix lets secret scanners recognize a leaked one.
 */
export const TUNNEL_TOKEN_PREFIX = "st-sluice-";

/** A token as every read returns it: never its secret, nor the secret's hash. */
export interface TunnelToken {
  id: string;
  /** The user every tunnel opened with this token belongs to. */
  userId: string;
  /** What the user called it; also the session name of an agent started without `--name`. */
  name: string;
  /** `st-sluice-…abcd`: enough for a person to tell tokens apart. */
  hint: string;
  createdAt: number;
  lastUsedAt: number | null;
  revokedAt: number | null;
}

export interface CreatedTunnelToken {
  token: TunnelToken;
  /** The secret, returned this once. */
  secret: string;
}

/**
 * The tokens tunnel agents authenticate with. A token belongs to one user, and the user of every
 * tunnel is the token's: nothing an agent says can change it.
 *
 * - `create` validates its input (400 naming the field) and stores only the secret's hash.
 * - `verify` answers the live token for a secret, or null for anything else (unknown, revoked,
 *   junk, non-strings); it never throws for bad input, and compares in constant time.
 * - `list`, `revoke` are scoped to the user: another user's token id reads as unknown.
 * - `revoke` is idempotent and keeps the first `revokedAt`; it resolves with the token, or null
 *   when the user has no such token.
 */
export interface TunnelTokenStore {
  create(input: { userId: string; name: string }): Promise<CreatedTunnelToken>;
  verify(secret: unknown): Promise<TunnelToken | null>;
  list(input: { userId: string; includeRevoked?: boolean }): Promise<TunnelToken[]>;
  revoke(input: { userId: string; tokenId: string }): Promise<TunnelToken | null>;
  /** Records a successful connection; best effort, never throws. */
  recordUse(input: { tokenId: string; at: number }): Promise<void>;
}

export function generateTunnelTokenSecret(): string {
  return TUNNEL_TOKEN_PREFIX + randomBytes(32).toString("base64url");
}

export function hashTunnelTokenSecret(secret: string): string {
  return createHash("sha256").update(secret, "utf8").digest("hex");
}

export function looksLikeTunnelTokenSecret(value: unknown): value is string {
  return typeof value === "string" && value.length === TUNNEL_TOKEN_PREFIX.length + 43 && value.startsWith(TUNNEL_TOKEN_PREFIX);
}

/** A token's name: what a person reads in a list, trimmed, 1-100 characters. */
export function parseTunnelTokenName(value: unknown): string {
  const name = typeof value === "string" ? value.trim() : "";
  if (name === "" || name.length > 100 || [...name].some(isControlCharacter)) {
    throw new GatewayError("invalid_request", "Invalid tunnel token: 'name' must be 1-100 printable characters.", { param: "name" });
  }
  return name;
}

function isControlCharacter(character: string): boolean {
  const code = character.codePointAt(0) ?? 0;
  return code < 0x20 || code === 0x7f;
}

interface StoredToken {
  token: TunnelToken;
  hash: string;
}

/** Tunnel tokens in process memory: nothing survives a restart (agents then need new tokens). */
export function createMemoryTunnelTokenStore(options: { clock?: Clock } = {}): TunnelTokenStore {
  const clock = options.clock ?? systemClock;
  const byHash = new Map<string, StoredToken>();
  const byId = new Map<string, StoredToken>();

  return {
    async create(input) {
      const userId = parseUserId(input.userId);
      const name = parseTunnelTokenName(input.name);
      const secret = generateTunnelTokenSecret();
      const token: TunnelToken = {
        id: createId("ttk"),
        userId,
        name,
        hint: `${TUNNEL_TOKEN_PREFIX}…${secret.slice(-4)}`,
        createdAt: clock.now(),
        lastUsedAt: null,
        revokedAt: null,
      };
      const stored = { token, hash: hashTunnelTokenSecret(secret) };
      byHash.set(stored.hash, stored);
      byId.set(token.id, stored);
      return { token: { ...token }, secret };
    },

    async verify(secret) {
      if (!looksLikeTunnelTokenSecret(secret)) return null;
      const hash = hashTunnelTokenSecret(secret);
      const stored = byHash.get(hash);
      if (stored === undefined || !timingSafeEqual(Buffer.from(hash, "hex"), Buffer.from(stored.hash, "hex"))) return null;
      return stored.token.revokedAt === null ? { ...stored.token } : null;
    },

    async list(input) {
      const tokens = [...byId.values()]
        .map((stored) => stored.token)
        .filter((token) => token.userId === input.userId && (input.includeRevoked === true || token.revokedAt === null))
        .sort((a, b) => b.createdAt - a.createdAt || (a.id < b.id ? 1 : -1));
      return tokens.map((token) => ({ ...token }));
    },

    async revoke(input) {
      const stored = byId.get(input.tokenId);
      if (stored === undefined || stored.token.userId !== input.userId) return null;
      stored.token.revokedAt ??= clock.now();
      return { ...stored.token };
    },

    async recordUse(input) {
      const stored = byId.get(input.tokenId);
      if (stored !== undefined) stored.token.lastUsedAt = Math.max(stored.token.lastUsedAt ?? 0, input.at);
    },
  };
}
