/**
 * Structured operational events: one JSON object per log line, the shape the alert rules in
 * infra/app/alerts.bicep query (Application Insights stores the line as the Message of an AppTraces
 * row; the rules parse it with parse_json). Never put a secret in `fields`: names that look like one
 * are replaced with "[redacted]" as a last line of defence, not as the plan.
 *
 *   logEvent(context, EVENTS.onboardingFinished, { site, instanceId, outcome: "failed", step, error })
 *
 * In an orchestrator pass the orchestration context: the line is skipped while replaying, so each
 * event is written once (DESIGN rule 3: orchestrators are replayed from history).
 */

/** Event names the alert rules rely on. Changing one means changing infra/app/alerts.bicep. */
export const EVENTS = {
  /** An onboardTenant orchestration ended. outcome "succeeded" | "failed"; on failure `step` and `error`. */
  onboardingFinished: "onboarding.finished",
  /** A rotateSecret orchestration ended. outcome "succeeded" | "failed"; on failure `step` and `error`. */
  rotationFinished: "rotation.finished",
  /** One step (activity) of an orchestration: outcome "started" | "succeeded" | "failed". Not alerted on (retries). */
  onboardingStep: "onboarding.step",
  rotationStep: "rotation.step",
  /** The rotation sweep (timer) began / ended. outcome on finished: "succeeded" | "failed". */
  sweepStarted: "sweep.started",
  sweepFinished: "sweep.finished",
  /**
   * One managed secret seen by the sweep: `expiresOn` (ISO 8601) and `daysLeft`; outcome "ok" |
   * "rotationStarted" | "rotationRunning" | ... The 7-day expiry alert reads the latest per site.
   */
  secretExpiry: "secret.expiry",
  /** A Key Vault Event Grid event arrived (SecretNearExpiry / SecretExpired). */
  keyVaultEvent: "keyvault.event",
} as const;

export type EventName = (typeof EVENTS)[keyof typeof EVENTS];

export type Outcome = "started" | "succeeded" | "failed" | "skipped" | "ok" | (string & {});

export interface EventFields {
  /** Site key: the Creatio site's lower-cased host. */
  site?: string;
  /** Step (activity name) concerned. */
  step?: string;
  /** Durable orchestration instance id. */
  instanceId?: string;
  outcome?: Outcome;
  [extra: string]: unknown;
}

/** What logEvent needs of an InvocationContext or an OrchestrationContext. */
export interface LogContext {
  log(...args: unknown[]): void;
  df?: { isReplaying?: boolean };
}

const SECRET_LIKE = /(pass(word|wd|phrase)?|pwd|secrettext|secretvalue|clientsecret|token|apikey|privatekey|^value$)/i;

/** The line logEvent writes (exported for tests and for callers that log elsewhere). */
export function formatEvent(name: EventName | string, fields: EventFields = {}): string {
  const { site, step, instanceId, outcome, ...extra } = fields;
  const line: Record<string, unknown> = { event: name, site, step, instanceId, outcome };
  for (const [key, value] of Object.entries(extra)) {
    if (value === undefined) continue;
    line[key] = SECRET_LIKE.test(key.replace(/[-_\s.]/g, "")) ? "[redacted]" : value instanceof Error ? value.message : value;
  }
  return JSON.stringify(line);
}

/** Writes one structured event line; skipped during orchestrator replay. */
export function logEvent(context: LogContext, name: EventName | string, fields: EventFields = {}): void {
  if (context.df?.isReplaying) return;
  context.log(formatEvent(name, fields));
}
