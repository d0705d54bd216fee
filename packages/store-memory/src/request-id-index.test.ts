import { describe, expect, it } from "vitest";
import { RequestIdIndex } from "./request-id-index.js";

describe("RequestIdIndex", () => {
  it("numbers ids in the order added and finds each again, across many growths", () => {
    const index = new RequestIdIndex();
    const ids = Array.from({ length: 50_000 }, (_, number) => `req_${number.toString(36)}_${(number * 7919) % 104_729}`);
    ids.forEach((id, row) => expect(index.add(id)).toBe(row));
    expect(index.size).toBe(ids.length);
    for (const [row, id] of ids.entries()) {
      if (row % 97 !== 0) continue;
      expect(index.get(id)).toBe(row);
      expect(index.idOf(row)).toBe(id);
    }
    expect(index.get("req_absent")).toBe(-1);
  });

  it("refuses an id it holds, and adds nothing then", () => {
    const index = new RequestIdIndex();
    expect(index.add("req_1")).toBe(0);
    expect(index.add("req_1")).toBe(-1);
    expect(index.size).toBe(1);
    expect(index.add("req_2")).toBe(1);
  });

  it("tells apart ids that differ only in length, case or one late character", () => {
    const index = new RequestIdIndex();
    const ids = ["a", "aa", "A", "req_x", "req_x ", "req_y", "req_xx"];
    for (const id of ids) index.add(id);
    ids.forEach((id, row) => expect(index.get(id)).toBe(row));
    expect(index.get("req_")).toBe(-1);
    expect(index.get("req_z")).toBe(-1);
  });

  it("keeps any id the ledger accepts exactly: non-ASCII, astral characters, 200 characters", () => {
    const index = new RequestIdIndex();
    const ids = ["ünïcode-ïd", "emoji-😀-id", "\u0000nul", "x".repeat(200), "日本語のリクエスト", "\ud800 lone surrogate"];
    for (const id of ids) index.add(id);
    ids.forEach((id, row) => {
      expect(index.idOf(row)).toBe(id);
      expect(index.get(id)).toBe(row);
    });
  });

  it("grows its arena for ids far longer than the average", () => {
    const index = new RequestIdIndex();
    const long = Array.from({ length: 400 }, (_, number) => `${number}-${"y".repeat(199 - String(number).length)}`);
    long.forEach((id) => index.add(id));
    long.forEach((id, row) => expect(index.get(id)).toBe(row));
    expect(index.idOf(399)).toBe(long[399]);
  });
});
