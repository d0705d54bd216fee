import type { IncomingMessage } from "node:http";
import { describe, expect, it } from "vitest";
import { nodeRequestTarget, normalizeBasePath, pathBelow } from "./base-path.js";

describe("normalizeBasePath", () => {
  it("gives one leading slash and no trailing one, and keeps `/`", () => {
    expect(normalizeBasePath("api/openai/v1/")).toBe("/api/openai/v1");
    expect(normalizeBasePath("/v1")).toBe("/v1");
    expect(normalizeBasePath("/")).toBe("/");
  });
});

describe("pathBelow", () => {
  it("is the path under the base, `/` for the base itself, null outside it", () => {
    expect(pathBelow("/v1/chat/completions", "/v1")).toBe("/chat/completions");
    expect(pathBelow("/v1", "/v1")).toBe("/");
    expect(pathBelow("/v1/", "/v1")).toBe("/");
    expect(pathBelow("/v10/models", "/v1")).toBeNull();
    expect(pathBelow("/other", "/v1")).toBeNull();
  });

  it("holds every path under `/`", () => {
    expect(pathBelow("/chat/completions", "/")).toBe("/chat/completions");
    expect(pathBelow("/", "/")).toBe("/");
  });
});

describe("nodeRequestTarget", () => {
  const request = (url: string, originalUrl?: string) => ({ url, originalUrl }) as IncomingMessage & { originalUrl?: string };

  it("splits off the query", () => {
    expect(nodeRequestTarget(request("/v1/models?limit=2"), "/v1")).toEqual({ path: "/models", query: "limit=2" });
  });

  it("follows Express's originalUrl when a mount path was stripped from url", () => {
    const mounted = request("/chat/completions", "/api/openai/v1/chat/completions");
    expect(nodeRequestTarget(mounted, "/api/openai/v1")?.path).toBe("/chat/completions");
    expect(nodeRequestTarget(mounted, "/")?.path).toBe("/chat/completions");
    expect(nodeRequestTarget(request("/elsewhere", "/api/elsewhere"), "/api/openai/v1")).toBeNull();
  });
});
