import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import type { HostIdentity, IdentifyInput } from "@sluice/core";

const cookieName = "sluice_demo_session";

/**
 * A stand-in for the host's own login: a signed session cookie naming the user. A real host
 * already has sessions; what matters is the `identify` hook, which turns one into a HostIdentity
 * so the host's own pages call the gateway without an AI key and are metered like key traffic.
 */
export function createDemoLogin(options: { secret?: Buffer } = {}) {
  const secret = options.secret ?? randomBytes(32);
  const sign = (userId: string) => createHmac("sha256", secret).update(userId).digest("base64url");

  return {
    /** The Set-Cookie value that logs `userId` in. */
    sessionCookie(userId: string): string {
      const value = `${Buffer.from(userId).toString("base64url")}.${sign(userId)}`;
      return `${cookieName}=${value}; Path=/; HttpOnly; SameSite=Lax`;
    },

    identify(input: IdentifyInput): HostIdentity | null {
      const cookies = input.headers.get("cookie");
      if (!cookies) return null;
      for (const part of cookies.split(";")) {
        const [name, value] = part.trim().split("=", 2);
        if (name !== cookieName || !value) continue;
        const [encodedUser, signature] = value.split(".", 2);
        if (!encodedUser || !signature) return null;
        const userId = Buffer.from(encodedUser, "base64url").toString("utf8");
        const expected = Buffer.from(sign(userId));
        const presented = Buffer.from(signature);
        if (expected.length !== presented.length || !timingSafeEqual(expected, presented)) return null;
        return { userId };
      }
      return null;
    },
  };
}
