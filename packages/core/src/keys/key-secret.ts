import { hash, randomBytes, timingSafeEqual } from "node:crypto";

/**
 * AI key secrets: `sk-sluice-` followed by 43 base64url characters (256 random bits). The prefix
 * makes a leaked key recognisable to secret scanners; the entropy makes a fast hash (SHA-256)
 * safe to store, where a password would need a slow one.
 */
export const KEY_SECRET_PREFIX = "sk-sluice-";

export function generateKeySecret(): string {
  return KEY_SECRET_PREFIX + randomBytes(32).toString("base64url");
}

/** The stored form of a secret: hex SHA-256. */
export function hashKeySecret(secret: string): string {
  // The one-shot form: no Hash object per call, on every keyed request.
  return hash("sha256", secret, "hex");
}

/** Compares a presented secret with a stored hash in constant time. */
export function keySecretMatches(secret: string, storedHash: string): boolean {
  const presented = Buffer.from(hashKeySecret(secret), "hex");
  const stored = Buffer.from(storedHash, "hex");
  return presented.length === stored.length && timingSafeEqual(presented, stored);
}

/** Whether a string is shaped like a Sluice key, to refuse junk before any store lookup. */
export function looksLikeKeySecret(value: string): boolean {
  return value.length === KEY_SECRET_PREFIX.length + 43 && value.startsWith(KEY_SECRET_PREFIX);
}

/** What a key list shows instead of the secret: the prefix and the last four characters. */
export function keySecretHint(secret: string): string {
  return `${KEY_SECRET_PREFIX}…${secret.slice(-4)}`;
}
