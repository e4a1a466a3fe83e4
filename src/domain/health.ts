import { daysLeft, type SitePlan } from "./rotationPlan";
import type { CreatioCheck, SiteTags } from "./tags";
import { EWS_SHUTDOWN_ON, EWS_SHUTDOWN_WARNING_DAYS, type MailStatus } from "./ews";

/**
 * One verdict per site, from what the registry knows (docs/architecture.md, "Status tells the
 * truth"): a site is healthy only when Creatio holds a valid secret of the app, Creatio's mail server
 * is linked to the app, no run has failed since the last success, and the secret Creatio holds is
 * not about to expire without a rotation in hand, and Exchange Online lets the app use EWS (the
 * last check's `mail`, src/domain/ews.ts). Every problem says what to do next.
 */
export type HealthState = "healthy" | "atRisk" | "broken";

export interface SiteHealth {
  state: HealthState;
  /**
   * The day this Creatio's mail stops: the expiry of the secret Creatio holds, or Exchange Online's
   * EWS shutdown when that comes first (Creatio's Office 365 connector uses EWS); null when Creatio
   * holds no secret of the app (its mail does not sync now).
   */
  mailStopsOn: string | null;
  daysUntilMailStops: number | null;
  problems: string[];
}

/** Days left at or below which an expiring secret counts as broken, as the expiry alert fires. */
export const EXPIRY_ALERT_DAYS = 7;

export function siteHealth(
  plan: SitePlan,
  tags: SiteTags,
  options: { rotateDaysBeforeExpiry: number; now: Date; creatioCheck?: CreatioCheck | null; mail?: MailStatus },
): SiteHealth {
  const broken: string[] = [];
  const atRisk: string[] = [];
  const stops = plan.expiresOn?.toISOString() ?? null;
  const shutdown = new Date(`${EWS_SHUTDOWN_ON}T00:00:00Z`);
  // A site whose permission profile does not use EWS (mail.ews notUsed) is not stopped by its shutdown.
  const ewsFirst = options.mail?.ews !== "notUsed" && plan.expiresOn !== undefined && shutdown < plan.expiresOn;
  const rotate = `POST /api/tenants/${plan.host}/rotate`;

  if (!tags.creatioSyncedKeyId) {
    broken.push(
      `Creatio holds no client secret of this app yet, so its mail cannot sync${tags.lastRun?.outcome === "failed" && tags.lastRun.step ? ` (the last ${runName(tags.lastRun.kind)} failed at ${tags.lastRun.step})` : ""}. ` +
        `Fix the cause and POST /api/tenants again (it delivers the secret already issued), or wait for the next sweep.`,
    );
  } else if (plan.expired) {
    broken.push(`The client secret Creatio holds expired on ${stops}: mail sync is failing. Rotate now: ${rotate}.`);
  } else if (plan.daysLeft !== null && plan.daysLeft < EXPIRY_ALERT_DAYS) {
    broken.push(`The client secret Creatio holds expires on ${stops} (${plan.daysLeft} days): rotation has not happened in time. Rotate now: ${rotate}.`);
  } else if (plan.daysLeft !== null && plan.daysLeft <= options.rotateDaysBeforeExpiry) {
    atRisk.push(`The client secret Creatio holds expires on ${stops} (${plan.daysLeft} days); the sweep rotates it (or ${rotate}).`);
  }

  if (tags.creatioSyncedKeyId && !plan.creatioCurrent) {
    atRisk.push(
      `Creatio still holds an older client secret (keyId ${tags.creatioSyncedKeyId}) than Key Vault's current one (keyId ${tags.keyId}); ` +
        `the next sweep delivers the current one (or ${rotate}).`,
    );
  }

  const last = tags.lastRun;
  if (last?.outcome === "failed" && tags.creatioSyncedKeyId) {
    atRisk.push(
      `The last ${runName(last.kind)} failed at ${last.step ?? "an unknown step"} on ${last.at}. Creatio keeps the secret it holds; ` +
        `GET /api/tenants/${plan.host} shows the error. Fix the cause, then ${last.kind === "rotate" ? rotate : "POST /api/tenants again"}.`,
    );
  } else if (tags.rotationState === "failed" && last?.outcome !== "failed") {
    atRisk.push(`The last rotation failed; the next sweep retries it (or ${rotate}).`);
  }

  const check = options.creatioCheck ?? tags.creatioCheck;
  if (check?.state === "drift") {
    broken.push(
      `Creatio's mail server is ${check.clientId ? `linked to another application (client id ${check.clientId})` : "not linked to this app"} (${check.detail ?? "seen"} at ${check.at}): ` +
        `Creatio's mail uses ${check.clientId ? "another app" : "no app"}. POST /api/tenants again${check.clientId ? ' with "takeOver": true' : ""} to link this site's app.`,
    );
  } else if (check?.state === "unreachable") {
    atRisk.push(`Creatio could not be checked at ${check.at}: ${(check.detail ?? "no answer").replace(/\.+$/, "")}. Its mail settings are unknown until it answers.`);
  }

  const mail = options.mail;
  if (mail) {
    const fix = mail.fix ? ` An Exchange administrator runs: ${mail.fix}` : "";
    if (mail.ews === "notAllowListed" || mail.ews === "ewsDisabled") {
      broken.push(`Exchange Online refuses this app's EWS calls, so Creatio's mail cannot sync: ${mail.reason ?? mail.ews}${fix} (then POST /api/tenants again or wait for the next sweep to re-check).`);
    } else if (mail.ews === "retired") {
      broken.push(mail.reason ?? `EWS in Exchange Online was shut down on ${EWS_SHUTDOWN_ON}.`);
    } else if (mail.ews === "unknown") {
      atRisk.push(`Whether Exchange Online lets this app use EWS is unknown: ${mail.reason ?? "not checked"}.${fix}`);
    } else if (mail.ews !== "notUsed" && mail.daysToShutdown <= EWS_SHUTDOWN_WARNING_DAYS) {
      atRisk.push(`Microsoft shuts EWS in Exchange Online down on ${EWS_SHUTDOWN_ON} (${mail.daysToShutdown} days): Creatio's Office 365 mail sync through EWS stops then; plan the move to a Microsoft Graph based integration.`);
    }
  }

  return {
    state: broken.length > 0 ? "broken" : atRisk.length > 0 ? "atRisk" : "healthy",
    mailStopsOn: ewsFirst ? shutdown.toISOString() : stops,
    daysUntilMailStops: ewsFirst ? daysLeft(shutdown, options.now) : plan.daysLeft,
    problems: [...broken, ...atRisk],
  };
}

/**
 * A site without readable tags: never onboarded this far (no secret yet), or tags edited by hand.
 * Its mail cannot sync through this app, so it is broken; the problem says where the onboarding stands.
 */
export function unmanagedHealth(
  host: string,
  onboarding: { runtimeStatus: string; step?: string; error?: string | null; adminConsent?: { url: string; tenantId: string; waitingUntil: string } | null } | null,
  tagsProblem?: string,
): SiteHealth {
  let problem: string;
  if (tagsProblem) problem = `The site's Key Vault tags cannot be read (${tagsProblem}): onboard it again (POST /api/tenants) to rewrite them.`;
  else if (!onboarding) problem = `${host} is not onboarded: POST /api/tenants.`;
  else if (onboarding.runtimeStatus === "Failed" || onboarding.runtimeStatus === "Terminated")
    problem = `${host} is not onboarded: the onboarding ${onboarding.runtimeStatus.toLowerCase()}${onboarding.error ? `: ${onboarding.error}` : "."}`;
  else if (onboarding.adminConsent)
    problem = `${host} is waiting for an administrator of tenant ${onboarding.adminConsent.tenantId} to consent (until ${onboarding.adminConsent.waitingUntil}): they open adminConsent.url and accept; the onboarding then continues. Its mail cannot sync before.`;
  else problem = `${host} is being onboarded (${onboarding.runtimeStatus}${onboarding.step ? `, at ${onboarding.step}` : ""}); its mail syncs once the onboarding completes.`;
  return { state: "broken", mailStopsOn: null, daysUntilMailStops: null, problems: [problem] };
}

const runName = (kind: "onboard" | "rotate" | "offboard") => (kind === "onboard" ? "onboarding" : kind === "rotate" ? "rotation" : "offboarding");

/** Order of the list: broken first, then at risk, then healthy; within each, the soonest stop first. */
export const HEALTH_ORDER: Record<HealthState, number> = { broken: 0, atRisk: 1, healthy: 2 };
