import type { InvocationContext, Timer } from "@azure/functions";
import * as df from "durable-functions";
import type { DurableClient } from "durable-functions";
import { getSecretClient, type SecretStore } from "../clients/keyVault";
import { getExchangeClient, type ExchangeAdmin } from "../clients/exchange";
import { planRotations, type ManagedSecret, type SitePlan } from "../domain/rotationPlan";
import { ourSecret } from "../domain/managedSecret";
import { offboardingRequested } from "../domain/offboarding";
import type { LastSweep } from "../api/schemas";
import { storeSweepRecord } from "./sweepRecord";
import { EVENTS, logEvent } from "../observability";
import { settings } from "../settings";
import { startRotation } from "./startRotation";
import { loggingSettingsErrors } from "./responses";
import { recheckMailReadiness, type MailCheckSummary } from "./mailCheck";

/**
 * The rotation sweep (issue 4): on ROTATION_SCHEDULE, list the managed secrets from Key Vault
 * (properties and tags only: listPropertiesOfSecrets never returns values, docs/architecture.md, "Key Vault is the registry"; our
 * contentType marks ours), pick the due sites (src/domain/rotationPlan.ts) and start one
 * rotateSecret per due site under `rotate-<host>`, skipping those already running. One summary
 * line (sweep.finished) and one secret.expiry line per site, the events infra/app/alerts.bicep
 * queries; already expired secrets also get a warning of their own. It also re-checks each site's
 * Exchange Online EWS readiness with one organization read per tenant (src/functions/mailCheck.ts).
 * Offboarded sites, and sites whose offboarding was asked for, are left alone. Its outcome is also
 * stored in Key Vault (./sweepRecord.ts) for GET /api/rotation-plan.
 */
export const ROTATION_SWEEP = "rotationSweep";

export interface SweepDeps {
  secrets: SecretStore;
  now: () => Date;
  rotateDaysBeforeExpiry: number;
  gracePeriodHours: number;
  /** ROTATION_SWEEP_CONCURRENCY: due rotations started at once; 1 when omitted. */
  concurrency?: number;
  /** Exchange Online admin API for the EWS readiness re-check; skipped when omitted. */
  exchange?: ExchangeAdmin;
  /** Exchange Online of another tenant, for its sites' EWS re-check. */
  exchangeFor?: (tenantId: string) => ExchangeAdmin;
  /** EWS_ACCESS; off (no re-check) when omitted. */
  ewsAccess?: "manage" | "check" | "off";
}

export interface SweepSummary {
  managed: number;
  due: number;
  started: number;
  alreadyRunning: number;
  expired: number;
  /** Secrets with our contentType whose tags do not decode: reported, not rotated. */
  unreadable: number;
  /** Due sites whose start failed (the next sweep tries again). */
  failedToStart: number;
  /** Offboarded sites, or sites whose offboarding was asked for: left alone. */
  offboarded: number;
  /** The EWS readiness re-check. */
  mail?: MailCheckSummary;
}

const defaultDeps = (): SweepDeps => {
  const s = settings();
  return {
    secrets: getSecretClient(),
    now: () => new Date(),
    rotateDaysBeforeExpiry: s.ROTATE_DAYS_BEFORE_EXPIRY,
    gracePeriodHours: s.OLD_SECRET_GRACE_HOURS,
    concurrency: s.ROTATION_SWEEP_CONCURRENCY,
    exchange: getExchangeClient(),
    exchangeFor: getExchangeClient,
    ewsAccess: s.EWS_ACCESS,
  };
};

/**
 * Our secrets (by contentType), with decodable tags; the rest are counted. A site whose offboarding
 * was asked for (its lastRun is an offboarding, finished or not: docs/architecture.md,
 * "Offboarding") is not managed any more: counted, left out. The listing is the sweep's only
 * per-site cost (issue 12), so each page is decoded while the next one is already being fetched:
 * the decoding hides under Key Vault's round trip instead of adding to it.
 */
export async function listManagedSecrets(secrets: SecretStore, context: InvocationContext): Promise<{ managed: ManagedSecret[]; unreadable: number; offboarded: number }> {
  const managed: ManagedSecret[] = [];
  let unreadable = 0;
  let offboarded = 0;
  const pages = secrets.listPropertiesOfSecrets().byPage();
  let next = pages.next();
  for (;;) {
    const page = await next;
    if (page.done) break;
    next = pages.next();
    // The request for the next page goes out only after the SDK's pipeline has run through several
    // awaits (microtasks), which a synchronous decode of this page would hold up until it ends:
    // let them run first, so the decoding overlaps Key Vault's round trip.
    await new Promise((resolve) => setImmediate(resolve));
    for (const properties of page.value) {
      const ours = ourSecret(properties);
      if (!ours) continue;
      if (ours.problem !== undefined || !ours.host || !ours.tags) {
        unreadable += 1;
        context.warn(`Key Vault secret ${properties.name} carries our contentType but not a site's tags; it is not rotated. ${ours.problem}`);
        continue;
      }
      if (offboardingRequested(ours.tags)) {
        offboarded += 1;
        continue;
      }
      managed.push({ host: ours.host, secretName: properties.name, expiresOn: properties.expiresOn, tags: ours.tags });
    }
  }
  return { managed, unreadable, offboarded };
}

export async function runRotationSweep(client: DurableClient, context: InvocationContext, deps: SweepDeps = defaultDeps()): Promise<SweepSummary> {
  const now = deps.now();
  logEvent(context, EVENTS.sweepStarted, { outcome: "started", rotateDaysBeforeExpiry: deps.rotateDaysBeforeExpiry });
  const summary: SweepSummary = { managed: 0, due: 0, started: 0, alreadyRunning: 0, expired: 0, unreadable: 0, failedToStart: 0, offboarded: 0 };
  try {
    const { managed, unreadable, offboarded } = await listManagedSecrets(deps.secrets, context);
    summary.managed = managed.length;
    summary.unreadable = unreadable;
    summary.offboarded = offboarded;
    const plans = planRotations(managed, now, deps.rotateDaysBeforeExpiry);
    // Starts fan out, at most `concurrency` at once; the lines below keep the plan's order.
    const duePlans = plans.filter((plan) => plan.due);
    const starts = await mapBounded(duePlans, deps.concurrency ?? 1, (plan) => startFor(client, context, plan, deps, summary));
    const outcomes = new Map(duePlans.map((plan, i) => [plan, starts[i]!]));
    for (const plan of plans) {
      const outcome = outcomes.get(plan) ?? "ok";
      if (plan.expired) {
        summary.expired += 1;
        context.warn(
          `EXPIRED: the client secret Creatio holds for ${plan.host} expired on ${plan.expiresOn?.toISOString() ?? "(unknown)"}; its mail sync is failing until the rotation started now completes.`,
        );
      }
      if (plan.due) summary.due += 1;
      // expiresOn and daysLeft are those of the secret Creatio holds: the day its mail stops, which the
      // 7-day alert reads (infra/app/alerts.bicep); creatioConfigured false means it holds none.
      const currentExpiresOn = plan.currentExpiresOn?.toISOString() ?? null;
      logEvent(context, EVENTS.secretExpiry, {
        site: plan.host,
        outcome,
        // Mostly the same date as the current version's (Creatio holds it): formatted once.
        expiresOn: plan.expiresOn === plan.currentExpiresOn ? currentExpiresOn : (plan.expiresOn?.toISOString() ?? null),
        daysLeft: plan.daysLeft,
        currentExpiresOn,
        creatioConfigured: plan.creatioConfigured,
        expired: plan.expired,
        reason: plan.reason,
        rotationState: plan.rotationState,
        nextRotationDueAt: plan.nextRotationDueAt?.toISOString() ?? null,
      });
    }
    // After the rotations are started, so a site rotating now is skipped rather than written under it.
    if (deps.exchange && deps.ewsAccess && deps.ewsAccess !== "off") try {
      summary.mail = await recheckMailReadiness(client, context, managed, { secrets: deps.secrets, exchange: deps.exchange, ...(deps.exchangeFor ? { exchangeFor: deps.exchangeFor } : {}), ewsAccess: deps.ewsAccess, now });
    } catch (error) {
      // The rotation part of the sweep stands; the next sweep checks again.
      context.error(`The EWS readiness re-check failed: ${error instanceof Error ? error.message : String(error)}`);
    }
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    logEvent(context, EVENTS.sweepFinished, { outcome: "failed", error: message, ...summary });
    await recordSweep(context, deps, sweepRecord(now, summary, message));
    throw error;
  }
  logEvent(context, EVENTS.sweepFinished, { outcome: "succeeded", ...summary });
  await recordSweep(context, deps, sweepRecord(now, summary, null));
  return summary;
}

/** The summary as GET /api/rotation-plan shows it (lastSweep). */
export function sweepRecord(at: Date, summary: SweepSummary, error: string | null): LastSweep {
  return {
    at: at.toISOString(),
    outcome: error === null ? "succeeded" : "failed",
    managed: summary.managed,
    due: summary.due,
    started: summary.started,
    skipped: summary.alreadyRunning + summary.failedToStart,
    expired: summary.expired,
    notMailReady: summary.mail?.notMailReady ?? 0,
    mailChecked: summary.mail !== undefined,
    alreadyRunning: summary.alreadyRunning,
    failedToStart: summary.failedToStart,
    unreadable: summary.unreadable,
    offboarded: summary.offboarded,
    error: error === null ? null : error.slice(0, 500),
  };
}

/** Bookkeeping: a record that cannot be stored is logged, never a failed sweep. */
async function recordSweep(context: InvocationContext, deps: SweepDeps, record: LastSweep): Promise<void> {
  try {
    await storeSweepRecord(deps.secrets, record);
  } catch (error) {
    context.warn(`The sweep's summary could not be stored in Key Vault (GET /api/rotation-plan shows the previous one): ${error instanceof Error ? error.message : String(error)}`);
  }
}

/** `fn` over `items` with at most `limit` calls in flight; results in the items' order. */
export async function mapBounded<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return results;
}

async function startFor(client: DurableClient, context: InvocationContext, plan: SitePlan, deps: SweepDeps, summary: SweepSummary): Promise<string> {
  try {
    const result = await startRotation(client, { host: plan.host, gracePeriodHours: deps.gracePeriodHours, trigger: "sweep", ...(plan.tenantId ? { tenantId: plan.tenantId } : {}) });
    if (result.started) {
      summary.started += 1;
      return "rotationStarted";
    }
    summary.alreadyRunning += 1;
    return "rotationRunning";
  } catch (error) {
    // One site's failure does not stop the sweep; the next sweep tries again.
    summary.failedToStart += 1;
    context.error(`Could not start the rotation of ${plan.host}: ${error instanceof Error ? error.message : String(error)}`);
    return "rotationStartFailed";
  }
}

df.app.client.timer(ROTATION_SWEEP, {
  // The host resolves %NAME% from the app settings (ROTATION_SCHEDULE, six-field NCRONTAB).
  schedule: "%ROTATION_SCHEDULE%",
  handler: loggingSettingsErrors(async (_timer: Timer, client: DurableClient, context: InvocationContext) => {
    await runRotationSweep(client, context);
  }),
});
