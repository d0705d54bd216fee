import { GatewayError } from "../errors/gateway-error.js";
import { keySecretHint, looksLikeKeySecret } from "../keys/key-secret.js";
import type { AiKey, KeyStore } from "../keys/key-store.js";
import type { GatewayOptions } from "./gateway-options.js";
import type { GatewayRequest } from "./gateway-request.js";

/** Who is calling, once authenticated. */
export interface Caller {
  userId: string;
  /** The AI key used, or null for a host-login request. */
  key: AiKey | null;
  /** The key's allocation, or the one the host named; null lets the gateway choose. */
  allocationId: string | null;
}

/** The presented credential: `Authorization: Bearer <key>`, or `api-key: <key>` as Azure clients send. */
function presentedCredential(request: GatewayRequest): string | null {
  const authorization = request.headers.get("authorization");
  if (authorization !== undefined) {
    // A repeated header reaches the fetch edge joined with ", " (node:http keeps the first): the
    // first credential counts, as on node:http. A key never holds a comma.
    const match = /^Bearer\s+([^\s,]+)\s*(?:,|$)/i.exec(authorization);
    if (match) return match[1]!;
  }
  const apiKey = request.headers.get("api-key");
  return apiKey !== undefined && apiKey.trim() !== "" ? apiKey.trim() : null;
}

/**
 * Authenticates a request. A Sluice key wins; anything else (no credential, or the host's own
 * session token) goes to the host's `identify` hook. Key failures say which: an unknown key, an
 * expired one, or a revoked one, so a user knows whether to fix a typo or make a new key.
 */
export async function authenticate(input: {
  request: GatewayRequest;
  keys: KeyStore;
  identify: GatewayOptions["identify"];
  now: number;
}): Promise<Caller> {
  const { request, keys, identify } = input;
  const credential = presentedCredential(request);

  if (credential !== null && looksLikeKeySecret(credential)) {
    const verification = await keys.verify(credential);
    switch (verification.status) {
      case "valid":
        keys.recordUse({ keyId: verification.key.id, at: input.now }).catch(() => {
          // lastUsedAt is best effort by contract; a failed write must not fail the request.
        });
        return { userId: verification.key.userId, key: verification.key, allocationId: verification.key.allocationId };
      case "expired":
        throw new GatewayError("expired_api_key", `The API key ${keySecretHint(credential)} has expired.`);
      case "revoked":
        throw new GatewayError("revoked_api_key", `The API key ${keySecretHint(credential)} has been revoked.`);
      case "unknown":
        throw invalidKey(credential);
    }
  }

  if (identify) {
    const identity = await identify({ headers: request.headers, raw: request.raw });
    if (identity) return { userId: identity.userId, key: null, allocationId: identity.allocationId ?? null };
  }

  if (credential !== null) throw invalidKey(credential);
  throw new GatewayError(
    "missing_identity",
    "You didn't provide an API key. Send it in an Authorization header as 'Bearer <key>'.",
  );
}

function invalidKey(credential: string): GatewayError {
  const shown = credential.length > 12 ? `${credential.slice(0, 8)}…${credential.slice(-4)}` : "****";
  return new GatewayError("invalid_api_key", `Incorrect API key provided: ${shown}.`);
}
