import { describe, expect, it } from "vitest";
import { KEY_SECRET_PREFIX, generateKeySecret, hashKeySecret, keySecretHint, keySecretMatches, looksLikeKeySecret } from "./key-secret.js";

describe("AI key secrets", () => {
  it("carry a recognisable prefix and 256 random bits", () => {
    const secret = generateKeySecret();
    expect(secret.startsWith(KEY_SECRET_PREFIX)).toBe(true);
    expect(Buffer.from(secret.slice(KEY_SECRET_PREFIX.length), "base64url")).toHaveLength(32);
    expect(looksLikeKeySecret(secret)).toBe(true);
    expect(generateKeySecret()).not.toBe(secret);
  });

  it("are stored as a hash that verifies the secret and nothing else", () => {
    const secret = generateKeySecret();
    const hash = hashKeySecret(secret);
    expect(hash).toMatch(/^[0-9a-f]{64}$/);
    expect(keySecretMatches(secret, hash)).toBe(true);
    expect(keySecretMatches(generateKeySecret(), hash)).toBe(false);
    expect(keySecretMatches(secret, "not-a-hash")).toBe(false);
  });

  it("show only a hint of themselves", () => {
    const secret = generateKeySecret();
    expect(keySecretHint(secret)).toBe(`${KEY_SECRET_PREFIX}…${secret.slice(-4)}`);
  });

  it("reject look-alikes before any lookup", () => {
    expect(looksLikeKeySecret("sk-proj-abc")).toBe(false);
    expect(looksLikeKeySecret(KEY_SECRET_PREFIX)).toBe(false);
  });
});
