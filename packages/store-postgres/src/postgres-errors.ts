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
