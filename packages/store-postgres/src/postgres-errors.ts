import { GatewayError } from "@sluice/core";

/** The SQLSTATE codes the stores act on (https://www.postgresql.org/docs/current/errcodes-appendix.html). */
const UNIQUE_VIOLATION = "23505";
const FOREIGN_KEY_VIOLATION = "23503";

interface DatabaseError {
  code?: unknown;
  constraint?: unknown;
}

function databaseError(error: unknown): DatabaseError | null {
  return typeof error === "object" && error !== null ? (error as DatabaseError) : null;
}

/** Whether `error` is a unique violation, of `constraint` when one is named. */
export function isUniqueViolation(error: unknown, constraint?: string): boolean {
  const details = databaseError(error);
  return details?.code === UNIQUE_VIOLATION && (constraint === undefined || details.constraint === constraint);
}

/** Whether `error` is a foreign key violation, of `constraint` when one is named. */
export function isForeignKeyViolation(error: unknown, constraint?: string): boolean {
  const details = databaseError(error);
  return details?.code === FOREIGN_KEY_VIOLATION && (constraint === undefined || details.constraint === constraint);
}

/** PostgreSQL cannot store U+0000: in `text` it fails with 22021, in `jsonb` with 22P05. */
const CHARACTER_NOT_IN_REPERTOIRE = "22021";
const UNTRANSLATABLE_CHARACTER = "22P05";

/**
 * The store with every method answering text PostgreSQL cannot hold (a NUL character, in a name,
 * a description or a provider's settings) with a 400 that says so, instead of a database error
 * the gateway could only call a 500. Checking every string of every input up front would cost each
 * call a walk through its values; the database checks anyway, and the statement that fails writes
 * nothing (a transaction around it rolls back).
 */
export function refusingNulText<Store extends object>(store: Store): Store {
  const wrapped: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(store)) {
    wrapped[name] =
      typeof value === "function"
        ? (...args: unknown[]): unknown => {
            const result: unknown = (value as (...parameters: unknown[]) => unknown).apply(store, args);
            return result instanceof Promise ? result.catch(rethrowNulText) : result;
          }
        : value;
  }
  return wrapped as Store;
}

function rethrowNulText(error: unknown): never {
  const code = databaseError(error)?.code;
  if (code === CHARACTER_NOT_IN_REPERTOIRE || code === UNTRANSLATABLE_CHARACTER) {
    throw new GatewayError("invalid_request", "Text may not contain the NUL character (\\u0000).", { cause: error });
  }
  throw error;
}
