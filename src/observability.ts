/**
 * Structured operational events: one JSON object per log line, the shape the alert rules in
 * infra/app/alerts.bicep query (Application Insights stores the line as the Message of an AppTraces
 * row; the rules parse it with parse_json). Never put a secret in `fields`: names that look like one
 * are replaced with "[redacted]" as a last line of defence, not as the plan.
 *
 *   logEvent(context, EVENTS.onboardingFinished, { site, instanceId, outcome: "failed", step, error })
 *
 * In an orchestrator pass the orchestration context: the line is skipped while replaying, so each
 * event is written once (docs/architecture.md, "Orchestrators are deterministic": they are replayed from history).
 */

/** Event names the alert rules rely on. Changing one means changing infra/app/alerts.bicep. */
export const EVENTS = {
  /** An onboardTenant orchestration ended. outcome "succeeded" | "failed"; on failure `step` and `error`. */
  onboardingFinished: "onboarding.finished",
  /** A rotateSecret orchestration ended. outcome "succeeded" | "failed"; on failure `step` and `error`. */
  rotationFinished: "rotation.finished",
  /** An offboardTenant orchestration ended. outcome "succeeded" | "failed"; on failure `step` and `error`. */
  offboardingFinished: "offboarding.finished",
  /** One step (activity) of an orchestration: outcome "started" | "succeeded" | "failed". Not alerted on (retries). */
  onboardingStep: "onboarding.step",
  /** GET /api/consent/callback: outcome "consented" | "declined" | "refused" (with `reason`). */
  adminConsentCallback: "consent.callback",
  rotationStep: "rotation.step",
  offboardingStep: "offboarding.step",
  /** The rotation sweep (timer) began / ended. outcome on finished: "succeeded" | "failed". */
  sweepStarted: "sweep.started",
  sweepFinished: "sweep.finished",
  /**
   * One managed secret seen by the sweep: `expiresOn` (ISO 8601) and `daysLeft`; outcome "ok" |
   * "rotationStarted" | "rotationRunning" | ... The 7-day expiry alert reads the latest per site.
   */
  secretExpiry: "secret.expiry",
  /**
   * The sweep found a site whose app Exchange Online does not let use EWS (or could not tell):
   * outcome = the readiness (notAllowListed | ewsDisabled | unknown | retired), with `appId`,
   * `tenantId`, `reason` and `fix` (the PowerShell to run). One per site per sweep; alerted on.
   */
  siteNotMailReady: "siteNotMailReady",
  /** A Key Vault Event Grid event arrived (SecretNearExpiry / SecretExpired). */
  keyVaultEvent: "keyvault.event",
} as const;

export type EventName = (typeof EVENTS)[keyof typeof EVENTS];

export type Outcome = "started" | "succeeded" | "failed" | "skipped" | "ok" | (string & {});

/** Where an event line goes: context.log, context.warn or context.error (the trace's severity level). */
export type EventLevel = "info" | "warn" | "error";

export interface EventFields {
  /** Site key: the Creatio site's lower-cased host. */
  site?: string;
  /** Step (activity name) concerned. */
  step?: string;
  /** Durable orchestration instance id. */
  instanceId?: string;
  outcome?: Outcome;
  /** Severity, when the outcome alone does not say it (see eventLevel); not written into the line. */
  level?: EventLevel;
  [extra: string]: unknown;
}

/** What logEvent needs of an InvocationContext or an OrchestrationContext. */
export interface LogContext {
  log(...args: unknown[]): void;
  warn?(...args: unknown[]): void;
  error?(...args: unknown[]): void;
  df?: { isReplaying?: boolean };
}

/**
 * Failures at error level, things someone should look at (skipped, expired) at warning level, the
 * rest at information level, so Application Insights' severity filters and the portal's failure
 * views see them; the line itself, which infra/app/alerts.bicep parses from Message, is the same
 * whatever the level. An explicit `level` field wins.
 */
export function eventLevel(fields: EventFields): EventLevel {
  if (fields.level) return fields.level;
  const outcome = String(fields.outcome ?? "");
  if (outcome === "failed" || /Failed$/.test(outcome)) return "error";
  if (outcome === "skipped" || outcome === "expired" || fields.expired === true) return "warn";
  return "info";
}

const SECRET_LIKE = /(pass(word|wd|phrase)?|pwd|secrettext|secretvalue|clientsecret|token|apikey|privatekey|^value$)/i;

/** Field names are few and repeat on every line (a sweep writes one line per site): each is judged once. */
const secretLikeKeys = new Map<string, boolean>();
function isSecretLike(key: string): boolean {
  let known = secretLikeKeys.get(key);
  if (known === undefined) {
    known = SECRET_LIKE.test(key.replace(/[-_\s.]/g, ""));
    if (secretLikeKeys.size < 1000) secretLikeKeys.set(key, known);
  }
  return known;
}

/** Written first, in this order (`level` is not written). */
const FIRST_FIELDS: ReadonlySet<string> = new Set(["site", "step", "instanceId", "outcome", "level"]);

/** The line logEvent writes (exported for tests and for callers that log elsewhere). */
export function formatEvent(name: EventName, fields: EventFields = {}): string {
  const line: Record<string, unknown> = { event: name, site: fields.site, step: fields.step, instanceId: fields.instanceId, outcome: fields.outcome };
  // The other fields in their order, without a rest copy of `fields` (a sweep writes a line per site).
  for (const key of Object.keys(fields)) {
    if (FIRST_FIELDS.has(key)) continue;
    const value = fields[key];
    if (value === undefined) continue;
    line[key] = isSecretLike(key) ? "[redacted]" : value instanceof Error ? value.message : value;
  }
  return JSON.stringify(line);
}

/** Writes one structured event line at its level (eventLevel); skipped during orchestrator replay. */
export function logEvent(context: LogContext, name: EventName, fields: EventFields = {}): void {
  if (context.df?.isReplaying) return;
  const line = formatEvent(name, fields);
  const level = eventLevel(fields);
  const write = level === "error" ? context.error : level === "warn" ? context.warn : undefined;
  // A context without warn/error (a test double) still gets the line.
  if (write) write.call(context, line);
  else context.log(line);
}
