import * as df from "durable-functions";
import type { RetryOptions } from "durable-functions";

/** Exponential backoff for callActivityWithRetry: `firstMs`, doubling, at most `maxMs` apart. */
export function retryPolicy(firstMs: number, attempts: number, maxMs = 60_000): RetryOptions {
  const options = new df.RetryOptions(firstMs, attempts);
  options.backoffCoefficient = 2;
  options.maxRetryIntervalInMilliseconds = maxMs;
  return options;
}

