/**
 * Failures that must not be retried, and messages fit to show an operator.
 *
 * An activity's error reaches the orchestrator only as text (Durable Functions keeps the message and
 * the stack, not the type: durable-functions TaskOrchestrationExecutor builds `new Error(Reason + Details)`),
 * so "do not retry" travels as a marker in the message. Retrying such a failure cannot help and can
 * hurt: a refused Creatio login repeated three times can lock the account; a conflict or a missing
 * mail server does not clear by waiting (docs/architecture.md, "Status tells the truth").
 */
export const NOT_RETRIED = "[not retried]";

/** An error the orchestrator reports at once instead of retrying. */
export class FinalError extends Error {
  override name = "FinalError";
  constructor(message: string) {
    super(`${message.split(NOT_RETRIED).join("").trim()} ${NOT_RETRIED}`);
  }
}

export function isFinal(error: unknown): boolean {
  const text = error instanceof Error ? `${error.message}` : String(error);
  return text.includes(NOT_RETRIED);
}

/**
 * The part of an error that may go into an HTTP answer, a status or a tag: its first line, without
 * stack frames, absolute file paths or file:// URLs, without the Durable host's wrappers
 * ("Orchestrator function 'x' failed: ", "Activity function 'x' failed: ") or a leading error type.
 * Durable reports a failure as "Reason \n Details" (durable-functions TaskOrchestrationExecutor),
 * Details being the stack; Node system errors (`ENOENT: ... open '/home/...'`) and
 * DefaultAzureCredential's multi-line AggregateAuthenticationError (one line per credential, with
 * CLI output) would otherwise show the host's file system. Logs keep the whole message.
 */
export function publicMessage(error: unknown, max = 300): string {
  const details = (error as { failureDetails?: { errorMessage?: string } } | undefined)?.failureDetails;
  const raw =
    details?.errorMessage ??
    (error instanceof Error || (error && typeof error === "object" && "message" in error) ? String((error as { message: unknown }).message) : typeof error === "string" ? error : JSON.stringify(error));
  const firstLine = raw.split(/\r?\n/).find((line) => line.trim() !== "" && !/^\s*at\s/.test(line))?.trim() ?? "";
  const cleaned = firstLine
    .replace(/^"+|"+$/g, "")
    .replace(/(?:Orchestrator|Activity) function '[^']*' failed:\s*/g, "")
    .replace(/^(?:[A-Za-z]*(?:Error|Exception)):\s+(?=\S)/, "")
    .replace(/file:\/\/\S+/gi, "[path]")
    .replace(/(^|[\s('"=[])([A-Za-z]:\\[^\s'"()]*)/g, "$1[path]")
    .replace(/(^|[\s('"=[])(\/(?:[^\s/'"():]+\/)+[^\s'"():]*\.(?:js|ts|mjs|cjs|json|node)\b(?::\d+(?::\d+)?)?)/g, "$1[path]")
    .replace(/(^|[\s('"=[])(\/(?:home|usr|var|tmp|opt|etc|root|srv|mnt|work|app)\/[^\s'"()]*)/g, "$1[path]")
    .trim();
  const text = cleaned === "" ? (error as Error)?.name || "unknown error" : cleaned;
  return text.length > max ? `${text.slice(0, max - 3)}...` : text;
}

/**
 * Replaces every occurrence of a secret in an error's message and stack before it leaves an activity
 * or reaches an answer: a failed activity's message is persisted in Durable history
 * (docs/architecture.md, "The secret never enters Durable state").
 */
export function redactError(error: unknown, ...secrets: (string | undefined)[]): Error {
  const err = error instanceof Error ? error : new Error(String(error));
  for (const secret of secrets) {
    if (!secret || secret.length < 4) continue;
    err.message = err.message.split(secret).join("[redacted]");
    if (err.stack) err.stack = err.stack.split(secret).join("[redacted]");
  }
  return err;
}
