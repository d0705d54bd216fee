import { describe, expect, it } from "vitest";
import { GatewayError, errorCodes } from "./gateway-error.js";

describe("GatewayError", () => {
  it("serializes to OpenAI's error shape with all four keys present", () => {
    const error = new GatewayError("model_not_found", "The model `x` does not exist or you do not have access to it.");
    expect(error.toJSON()).toEqual({
      error: {
        message: "The model `x` does not exist or you do not have access to it.",
        type: "invalid_request_error",
        param: null,
        code: "model_not_found",
      },
    });
    expect(JSON.parse(JSON.stringify(error))).toEqual(error.toJSON());
  });

  it("takes its status from the code table", () => {
    expect(new GatewayError("allocation_exhausted", "x").status).toBe(402);
    expect(new GatewayError("invalid_api_key", "x").status).toBe(401);
    expect(new GatewayError("upstream_timeout", "x").status).toBe(504);
    for (const [code, { status }] of Object.entries(errorCodes)) {
      expect(new GatewayError(code as keyof typeof errorCodes, "x").status).toBe(status);
    }
  });

  it("carries the offending parameter and extra headers", () => {
    const error = new GatewayError("invalid_request", "bad", { param: "messages[0].role", headers: { "retry-after": "1" } });
    expect(error.toJSON().error.param).toBe("messages[0].role");
    expect(error.headers).toEqual({ "retry-after": "1" });
  });

  it("can relay an upstream's own status and type", () => {
    const error = new GatewayError("upstream_error", "overloaded", { status: 503, type: "overloaded" });
    expect(error.status).toBe(503);
    expect(error.toJSON().error.type).toBe("overloaded");
  });

  it("is recognized by brand, not by prototype identity", () => {
    const error = new GatewayError("not_found", "x");
    expect(GatewayError.is(error)).toBe(true);
    expect(GatewayError.is(new Error("x"))).toBe(false);
    expect(GatewayError.is({ [Symbol.for("sluice.gateway-error")]: true })).toBe(true);
    expect(GatewayError.is(null)).toBe(false);
  });

  it("wraps unknown failures without leaking their message", () => {
    const wrapped = GatewayError.from(new Error("password=hunter2"));
    expect(wrapped.status).toBe(500);
    expect(wrapped.message).not.toContain("hunter2");
    expect(wrapped.cause).toBeInstanceOf(Error);
  });

  it("marks rate limits and upstream failures retryable, client errors not", () => {
    expect(new GatewayError("rate_limit_exceeded", "x").retryable).toBe(true);
    expect(new GatewayError("upstream_error", "x").retryable).toBe(true);
    expect(new GatewayError("invalid_request", "x").retryable).toBe(false);
    expect(new GatewayError("allocation_exhausted", "x").retryable).toBe(false);
  });
});

describe("GatewayError relaying an upstream error", () => {
  it("keeps the upstream's code and details, with the four OpenAI keys present", () => {
    const error = new GatewayError("content_filter", "The response was filtered", {
      param: "prompt",
      wireCode: "content_filter",
      details: { innererror: { code: "ResponsibleAIPolicyViolation" }, message: "ignored" },
    });
    expect(error.toJSON()).toEqual({
      error: {
        message: "The response was filtered",
        type: "invalid_request_error",
        param: "prompt",
        code: "content_filter",
        innererror: { code: "ResponsibleAIPolicyViolation" },
      },
    });
  });

  it("can send a null code", () => {
    expect(new GatewayError("upstream_error", "x", { wireCode: null }).toJSON().error.code).toBeNull();
  });
});

describe("GatewayError retryability override", () => {
  it("lets an error declare itself final whatever its status", () => {
    expect(new GatewayError("upstream_error", "bad credentials", { retryable: false }).retryable).toBe(false);
    expect(new GatewayError("upstream_error", "flaky").retryable).toBe(true);
  });
});
