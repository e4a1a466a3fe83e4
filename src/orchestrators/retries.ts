import * as df from "durable-functions";
import type { RetryOptions } from "durable-functions";

/** Exponential backoff for callActivityWithRetry: `firstMs`, doubling, at most `maxMs` apart. */
export function retryPolicy(firstMs: number, attempts: number, maxMs = 60_000): RetryOptions {
  const options = new df.RetryOptions(firstMs, attempts);
  options.backoffCoefficient = 2;
  options.maxRetryIntervalInMilliseconds = maxMs;
  return options;
}

/** The upstream message of a failed activity, without the SDK's "Error: " prefix. */
export function upstreamMessage(error: unknown): string {
  const details = (error as { failureDetails?: { errorMessage?: string } }).failureDetails;
  if (details?.errorMessage) return details.errorMessage;
  const message = error instanceof Error ? error.message : String(error);
  return message.replace(/^Error: /, "");
}
