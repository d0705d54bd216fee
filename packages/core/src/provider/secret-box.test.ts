import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { GatewayError } from "../errors/gateway-error.js";
import { createSecretBox } from "./secret-box.js";

describe("createSecretBox", () => {
  const box = createSecretBox({ key: randomBytes(32) });

  it("round-trips a secret, and the sealed form does not contain it", () => {
    const sealed = box.seal("sk-upstream-very-secret", "prv_1:apiKey");
    expect(sealed).not.toContain("sk-upstream-very-secret");
    expect(box.open(sealed, "prv_1:apiKey")).toBe("sk-upstream-very-secret");
  });

  it("seals the same secret differently every time", () => {
    expect(box.seal("same", "c")).not.toBe(box.seal("same", "c"));
  });

  it("refuses a ciphertext moved to another provider or secret name", () => {
    const sealed = box.seal("secret", "prv_1:apiKey");
    expect(() => box.open(sealed, "prv_2:apiKey")).toThrow(GatewayError);
  });

  it("refuses a tampered ciphertext and a foreign key", () => {
    const sealed = box.seal("secret", "c");
    const tampered = sealed.slice(0, -2) + (sealed.endsWith("A") ? "BB" : "AA");
    expect(() => box.open(tampered, "c")).toThrow(/could not be decrypted/);
    expect(() => createSecretBox({ key: randomBytes(32) }).open(sealed, "c")).toThrow(GatewayError);
  });

  it("accepts a base64 or hex key of 32 bytes and refuses any other length", () => {
    const key = randomBytes(32);
    const sealed = createSecretBox({ key: key.toString("base64") }).seal("s", "c");
    expect(createSecretBox({ key: key.toString("hex") }).open(sealed, "c")).toBe("s");
    expect(() => createSecretBox({ key: randomBytes(16) })).toThrow(/32 bytes/);
  });
});
