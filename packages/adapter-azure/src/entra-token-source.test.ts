import { createManualClock, GatewayError } from "@sluice/core";
import { describe, expect, it } from "vitest";
import { EntraTokenSource } from "./entra-token-source.js";
import { createFakeTokenCredential } from "./test-support/fake-token-credential.js";

const scope = "https://cognitiveservices.azure.com/.default";
const hour = 3_600_000;
const minute = 60_000;

function setup(input: { delayMs?: number; lifetimeMs?: number } = {}) {
  const clock = createManualClock();
  const credential = createFakeTokenCredential({ clock, lifetimeMs: input.lifetimeMs ?? hour, delayMs: input.delayMs });
  const source = new EntraTokenSource({ credential, scope, clock });
  return { clock, credential, source };
}

/** Lets a background refresh settle. */
const settle = () => new Promise((resolve) => setImmediate(resolve));

describe("EntraTokenSource", () => {
  it("asks the credential once per token lifetime, not per request", async () => {
    const { clock, credential, source } = setup();
    for (let request = 0; request < 50; request++) {
      expect(await source.token()).toBe("entra-token-1");
      clock.advance(minute);
    }
    // 50 minutes in: still within the hour, but past the refresh point (55 minutes) only later.
    expect(credential.calls).toHaveLength(1);
    expect(credential.calls[0]?.scopes).toEqual([scope]);
  });

  it("shares one getToken among 100 concurrent requests", async () => {
    const { credential, source } = setup({ delayMs: 20 });
    const tokens = await Promise.all(Array.from({ length: 100 }, () => source.token()));
    expect(new Set(tokens)).toEqual(new Set(["entra-token-1"]));
    expect(credential.calls).toHaveLength(1);
  });

  it("refreshes 5 minutes before expiry in the background, serving the valid token meanwhile", async () => {
    const { clock, credential, source } = setup({ delayMs: 5 });
    await source.token();
    clock.advance(hour - 5 * minute);
    // At the refresh point: the cached token still serves, without waiting for the new one.
    const during = await Promise.all(Array.from({ length: 20 }, () => source.token()));
    expect(new Set(during)).toEqual(new Set(["entra-token-1"]));
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(await source.token()).toBe("entra-token-2");
    expect(credential.calls).toHaveLength(2);
  });

  it("honours the credential's refreshAfterTimestamp when it is earlier", async () => {
    const clock = createManualClock();
    let calls = 0;
    const source = new EntraTokenSource({
      clock,
      scope,
      credential: {
        async getToken() {
          calls += 1;
          return { token: `t${calls}`, expiresOnTimestamp: clock.now() + hour, refreshAfterTimestamp: clock.now() + 30 * minute };
        },
      },
    });
    await source.token();
    clock.advance(31 * minute);
    expect(await source.token()).toBe("t1");
    await settle();
    expect(await source.token()).toBe("t2");
  });

  it("keeps serving a still-valid token when a refresh fails, and retries after a pause, not per request", async () => {
    const { clock, credential, source } = setup();
    await source.token();
    credential.fail();
    clock.advance(hour - 4 * minute);
    expect(await source.token()).toBe("entra-token-1");
    await settle();
    // The refresh failed; requests in the next 10 seconds do not ask again.
    for (let request = 0; request < 20; request++) expect(await source.token()).toBe("entra-token-1");
    expect(credential.calls).toHaveLength(2);
    clock.advance(10_000);
    credential.succeed();
    expect(await source.token()).toBe("entra-token-1");
    await settle();
    expect(await source.token()).toBe("entra-token-2");
    expect(credential.calls).toHaveLength(3);
  });

  it("never serves an expired token: a failed refresh after expiry is a 503", async () => {
    const { clock, credential, source } = setup();
    await source.token();
    credential.fail();
    clock.advance(hour);
    const error = await source.token().then(
      () => null,
      (thrown: unknown) => thrown,
    );
    expect(GatewayError.is(error)).toBe(true);
    expect((error as GatewayError).status).toBe(503);
    expect((error as GatewayError).retryable).toBe(true);
    // Within the pause, requests fail fast without asking the credential again.
    await expect(source.token()).rejects.toMatchObject({ status: 503 });
    expect(credential.calls).toHaveLength(2);
    clock.advance(10_000);
    credential.succeed();
    expect(await source.token()).toBe("entra-token-2");
  });

  it("treats a null token as a failure", async () => {
    const clock = createManualClock();
    const source = new EntraTokenSource({ clock, scope, credential: { getToken: async () => null } });
    await expect(source.token()).rejects.toMatchObject({ status: 503, code: "provider_unavailable" });
  });

  it("lets one waiting caller give up without cancelling the shared request for the others", async () => {
    const { credential, source } = setup({ delayMs: 30 });
    const controller = new AbortController();
    const leaving = source.token(controller.signal);
    const staying = source.token();
    controller.abort();
    await expect(leaving).rejects.toMatchObject({ message: "The request was cancelled." });
    expect(await staying).toBe("entra-token-1");
    expect(credential.calls).toHaveLength(1);
  });
});
