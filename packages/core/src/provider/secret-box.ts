import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { GatewayError } from "../errors/gateway-error.js";

/**
 * Encrypts upstream secrets at rest. AES-256-GCM with a fresh 96-bit nonce per value; the
 * associated data binds a ciphertext to its provider and secret name, so a row copied onto
 * another provider fails to decrypt instead of leaking a key to the wrong upstream.
 */
export interface SecretBox {
  seal(plaintext: string, context: string): string;
  open(sealed: string, context: string): string;
}

const version = "v1";

/**
 * @param options.key 32 bytes: a Buffer, or a base64 / hex string of them. The host supplies it
 *   (from its KMS or environment) and must keep it stable; losing it loses the stored secrets.
 */
export function createSecretBox(options: { key: Uint8Array | string }): SecretBox {
  const key = decodeKey(options.key);
  return {
    seal(plaintext, context) {
      const nonce = randomBytes(12);
      const cipher = createCipheriv("aes-256-gcm", key, nonce);
      cipher.setAAD(Buffer.from(context, "utf8"));
      const body = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final()]);
      const tag = cipher.getAuthTag();
      return [version, nonce.toString("base64url"), tag.toString("base64url"), body.toString("base64url")].join(".");
    },
    open(sealed, context) {
      const [prefix, nonce, tag, body] = sealed.split(".");
      if (prefix !== version || nonce === undefined || tag === undefined || body === undefined) {
        throw new GatewayError("internal_error", "A stored secret is not in a format this version can read.");
      }
      try {
        const decipher = createDecipheriv("aes-256-gcm", key, Buffer.from(nonce, "base64url"));
        decipher.setAAD(Buffer.from(context, "utf8"));
        decipher.setAuthTag(Buffer.from(tag, "base64url"));
        return Buffer.concat([decipher.update(Buffer.from(body, "base64url")), decipher.final()]).toString("utf8");
      } catch (error) {
        throw new GatewayError(
          "internal_error",
          "A stored secret could not be decrypted: the secret key differs from the one it was sealed with.",
          { cause: error },
        );
      }
    },
  };
}

function decodeKey(key: Uint8Array | string): Buffer {
  let bytes: Buffer;
  if (typeof key !== "string") bytes = Buffer.from(key);
  else if (/^[0-9a-fA-F]{64}$/.test(key)) bytes = Buffer.from(key, "hex");
  else bytes = Buffer.from(key, "base64");
  if (bytes.length !== 32) {
    throw new GatewayError(
      "invalid_request",
      `The secret key must be 32 bytes (base64 or hex encoded), got ${bytes.length}.`,
      { param: "secretKey" },
    );
  }
  return bytes;
}
