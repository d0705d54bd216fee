import { z } from "zod";

/**
 * A point in time: epoch milliseconds, an ISO 8601 date-time with its offset
 * (`2026-12-31T00:00:00Z`), or a date (`2026-12-31`, midnight UTC).
 */
export const instantSchema = z.union(
  [
    z.number().int().nonnegative().max(8.64e15),
    z.iso.datetime({ offset: true }).transform((text) => Date.parse(text)),
    z.iso.date().transform((text) => Date.parse(`${text}T00:00:00Z`)),
  ],
  { error: "must be epoch milliseconds or an ISO 8601 date or date-time such as 2026-12-31T00:00:00Z" },
);
