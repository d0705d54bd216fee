/**
 * Reading what Azure Resource Manager said when an operation failed. The SDK throws a RestError
 * for a refused request, with ARM's `error.code` and `error.message`
 * (`{"error":{"code":"InsufficientQuota","message":"..."}}`), and a plain Error for a
 * long-running operation that ended `Failed`, whose message core-lro composes as
 * `The long-running operation has failed. <code>. <message>`.
 */
export interface ArmFailure {
  /** ARM's error code (`InsufficientQuota`, `DeploymentModelNotSupported`, `AuthorizationFailed`), when known. */
  code: string | null;
  /** Azure's message, as it wrote it. */
  message: string;
  /** The HTTP status of a refused request; null for a failed operation or a transport failure. */
  status: number | null;
}

const lroFailure = /^The long-running operation has failed\.\s*([A-Za-z][\w.]*)\.\s*([\s\S]*)$/;
const maxMessageLength = 3_000;

export function describeArmFailure(error: unknown): ArmFailure {
  if (!(error instanceof Error)) return { code: null, message: String(error).slice(0, maxMessageLength), status: null };
  const fields = error as Error & { code?: unknown; statusCode?: unknown };
  if (error.name === "RestError") {
    const code = typeof fields.code === "string" && fields.code !== "" ? fields.code : null;
    const status = typeof fields.statusCode === "number" ? fields.statusCode : null;
    return { code, message: clip(error.message), status };
  }
  const match = lroFailure.exec(error.message);
  if (match !== null) return { code: match[1]!, message: clip(match[2]!.trim()), status: null };
  return { code: null, message: clip(error.message), status: null };
}

/** True for ARM's "it is not there": a 404 (`ResourceNotFound`, `DeploymentNotFound`, ...). */
export function isArmNotFound(error: unknown): boolean {
  if (!(error instanceof Error) || error.name !== "RestError") return false;
  return (error as Error & { statusCode?: unknown }).statusCode === 404;
}

/** The status reason a failed provider shows: `<code>: <message>`. */
export function formatArmFailure(failure: ArmFailure): string {
  return failure.code === null ? failure.message : `${failure.code}: ${failure.message}`;
}

function clip(text: string): string {
  return text.length <= maxMessageLength ? text : `${text.slice(0, maxMessageLength)}…`;
}
