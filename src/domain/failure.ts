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
 * The part of an error message an operator should read: no stack frames, no absolute file paths, no
 * SDK prefixes, at most `max` characters. Used for every error that reaches an HTTP answer, a status
 * or a tag.
 */
export function publicMessage(error: unknown, max = 600): string {
  const details = (error as { failureDetails?: { errorMessage?: string } } | undefined)?.failureDetails;
  const raw = details?.errorMessage ?? (error instanceof Error ? error.message : typeof error === "string" ? error : JSON.stringify(error));
  // Durable's "Reason \n Details" joins the message and the stack (whose first line repeats the
  // message after the error's type): keep what comes before the first frame, each sentence once.
  const lines = raw.split(/\r?\n/);
  const firstFrame = lines.findIndex((line) => /^\s*at\s/.test(line) || /^\s*Stack:/i.test(line));
  let text = "";
  for (const line of firstFrame >= 0 ? lines.slice(0, firstFrame) : lines) {
    const part = line
      .trim()
      .replace(/^"+|"+$/g, "")
      .replace(/(?:Orchestrator|Activity) function '[^']*' failed:\s*/g, "")
      .replace(/^(?:[A-Za-z]*(?:Error|Exception)):\s*/, "")
      .trim();
    if (part && !text.includes(part)) text = text ? `${text} ${part}` : part;
  }
  text = text
    .replace(/(?:[A-Za-z]:)?(?:[\\/][\w.@-]+){2,}[\\/]?[\w.@-]*\.(?:ts|js|mjs|cjs)(?::\d+(?::\d+)?)?/g, "[path]")
    .replace(/\s+/g, " ")
    .trim();
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
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
