import type { SiteTags } from "./tags";

/**
 * Which managed sites are due for rotation (issue 4, docs/architecture.md, "Key Vault is the registry"): pure, from what
 * `listPropertiesOfSecrets` gives (expiresOn and tags of each secret's current version, never a
 * value), so the sweep, the status API and the unit tests share one rule.
 *
 * Due when the current version expires within `rotateDaysBeforeExpiry` days (an already expired
 * one included: Key Vault still returns it, docs/architecture.md, "Azure Key Vault", and rotating is the fix), when the
 * tags say the last rotation failed (the sweep is its retry), or when they say one is still under
 * way (`rotating`, `grace-period`): the sweep skips it while its orchestration runs, and restarts it
 * if that orchestration was terminated or lost, which then only finishes what was left (the
 * orchestrator issues no new secret when none is due); and when Creatio holds a password other than
 * the current one (an onboarding re-run issued a new secret, then failed at Creatio): Creatio's
 * password would otherwise expire unnoticed while the current version looks healthy, so the
 * rotation delivers the current secret and retires the old password after the grace period.
 */

export const DAY_MS = 86_400_000;

export type DueReason = "expired" | "expiresSoon" | "lastRotationFailed" | "rotationUnfinished" | "creatioBehind" | "creatioNeverConfigured";

export interface ManagedSecret {
  host: string;
  secretName: string;
  expiresOn: Date | undefined;
  tags: SiteTags;
}

export interface SitePlan {
  host: string;
  secretName: string;
  /**
   * The day this site's Creatio mail stops unless a rotation delivers a newer secret: the expiry of
   * the password Creatio holds, or of Key Vault's current version when that is sooner. Undefined
   * when Creatio holds no secret of the app (never delivered) or no expiry is recorded.
   */
  expiresOn: Date | undefined;
  /** Key Vault's current version's expiry (what the next delivery would give Creatio). */
  currentExpiresOn: Date | undefined;
  /** Creatio holds a secret of the app (it has received one). */
  creatioConfigured: boolean;
  /** Creatio holds the current version's password. */
  creatioCurrent: boolean;
  /** Whole days until expiresOn, rounded down; negative once expired; null without one. */
  daysLeft: number | null;
  expired: boolean;
  /** When the sweep will start the next rotation: expiresOn minus the rotation window. */
  nextRotationDueAt: Date | null;
  due: boolean;
  /** Why it is due; undefined when it is not. */
  reason: DueReason | undefined;
  rotationState: SiteTags["rotationState"];
  /** The site's Entra tenant when not the home tenant (its rotation runs there). */
  tenantId: string | undefined;
}

export function daysLeft(expiresOn: Date | undefined, now: Date): number | null {
  return expiresOn ? Math.floor((expiresOn.getTime() - now.getTime()) / DAY_MS) : null;
}

export function nextRotationDueAt(expiresOn: Date | undefined, rotateDaysBeforeExpiry: number): Date | null {
  return expiresOn ? new Date(expiresOn.getTime() - rotateDaysBeforeExpiry * DAY_MS) : null;
}

/** True when a secret expiring at `expiresOn` is inside the rotation window at `now`. */
export function isInRotationWindow(expiresOn: Date | undefined, now: Date, rotateDaysBeforeExpiry: number): boolean {
  // No recorded expiry: our secrets always carry one (the password's endDateTime); a hand-made
  // version without it is treated as due rather than trusted to live forever.
  if (!expiresOn) return true;
  return expiresOn.getTime() - now.getTime() <= rotateDaysBeforeExpiry * DAY_MS;
}

/**
 * When this site's Creatio mail stops (docs/architecture.md, "Status tells the truth"): the expiry of
 * the password Creatio holds (creatioSyncedExpiresOn; Key Vault's current expiry when Creatio holds
 * the current keyId), never later than Key Vault's current version. Undefined when Creatio never
 * received a secret of the app.
 */
export function creatioExpiresOn(tags: SiteTags, currentExpiresOn: Date | undefined): Date | undefined {
  if (!tags.creatioSyncedKeyId) return undefined;
  if (tags.creatioSyncedKeyId === tags.keyId) return currentExpiresOn ?? parseDate(tags.creatioSyncedExpiresOn);
  // An older password: its recorded expiry (earlier versions did not record it: fall back to the current one's).
  const held = parseDate(tags.creatioSyncedExpiresOn);
  if (!held) return currentExpiresOn;
  return currentExpiresOn && currentExpiresOn < held ? currentExpiresOn : held;
}

function parseDate(text: string | undefined): Date | undefined {
  const d = text ? new Date(text) : undefined;
  return d && !Number.isNaN(d.getTime()) ? d : undefined;
}

/**
 * A secret issued recently enough to deliver rather than replace with another: still valid with at
 * least min(rotation window, 90% of its lifetime) left. A secret shorter-lived than the window is
 * always "in the window", so without the lifetime term a retry would issue a new one every time.
 */
export function isFreshEnough(expiresOn: Date | undefined, lifetimeDays: number, now: Date, rotateDaysBeforeExpiry: number): boolean {
  if (!expiresOn) return false;
  const left = expiresOn.getTime() - now.getTime();
  return left > 0 && left >= Math.min(rotateDaysBeforeExpiry, 0.9 * lifetimeDays) * DAY_MS;
}

export function planSite(secret: ManagedSecret, now: Date, rotateDaysBeforeExpiry: number): SitePlan {
  const stopsOn = creatioExpiresOn(secret.tags, secret.expiresOn);
  const creatioCurrent = secret.tags.creatioSyncedKeyId === secret.tags.keyId;
  // Creatio holds nothing yet: judge the secret waiting for delivery.
  const judged = secret.tags.creatioSyncedKeyId ? stopsOn : secret.expiresOn;
  const expired = judged !== undefined && judged.getTime() <= now.getTime();
  let reason: DueReason | undefined;
  if (expired) reason = "expired";
  else if (isInRotationWindow(judged, now, rotateDaysBeforeExpiry)) reason = "expiresSoon";
  else if (secret.tags.rotationState === "failed") reason = "lastRotationFailed";
  else if (secret.tags.rotationState === "rotating" || secret.tags.rotationState === "grace-period") reason = "rotationUnfinished";
  else if (!secret.tags.creatioSyncedKeyId) reason = "creatioNeverConfigured";
  else if (!creatioCurrent) reason = "creatioBehind";
  return {
    host: secret.host,
    secretName: secret.secretName,
    expiresOn: stopsOn,
    currentExpiresOn: secret.expiresOn,
    creatioConfigured: secret.tags.creatioSyncedKeyId !== undefined,
    creatioCurrent,
    daysLeft: daysLeft(stopsOn, now),
    expired,
    nextRotationDueAt: nextRotationDueAt(judged, rotateDaysBeforeExpiry),
    due: reason !== undefined,
    reason,
    rotationState: secret.tags.rotationState,
    tenantId: secret.tags.tenantId,
  };
}

/** Every site's plan, soonest expiry first (no expiry last), then by host. */
export function planRotations(secrets: readonly ManagedSecret[], now: Date, rotateDaysBeforeExpiry: number): SitePlan[] {
  return secrets.map((s) => planSite(s, now, rotateDaysBeforeExpiry)).sort(bySoonestExpiry);
}

/** A Date's time without a new Date per comparison (a sweep sorts thousands of plans). */
function timeOf(value: Date | undefined | string | null): number {
  if (!value) return Number.POSITIVE_INFINITY;
  return value instanceof Date ? value.getTime() : new Date(value).getTime();
}

export function bySoonestExpiry(a: { expiresOn: Date | undefined | string | null; host: string }, b: { expiresOn: Date | undefined | string | null; host: string }): number {
  const ta = timeOf(a.expiresOn);
  const tb = timeOf(b.expiresOn);
  if (ta !== tb) return ta < tb ? -1 : 1;
  return a.host.localeCompare(b.host);
}

export type LastRotationOutcome = "succeeded" | "failed" | "running";

export interface LastRotation {
  at: string | null;
  outcome: LastRotationOutcome;
  /** The step that failed, when the last run failed. */
  step?: string;
}

/**
 * The last rotation or failed run. A failure of either run (onboarding or rotation) comes first: it
 * stays until a later run succeeds, so status never says "succeeded" while Creatio was not given
 * the secret (docs/architecture.md, "Status tells the truth"). Otherwise: a running rotation, the
 * last rotation that succeeded (lastRun; earlier versions derived it from the previousKeyId a
 * rotation leaves behind and the time Creatio received the new secret). A site only ever onboarded
 * has none.
 */
export function lastRotationFromTags(tags: SiteTags): LastRotation | null {
  if (tags.lastRun?.outcome === "failed") return { at: tags.lastRun.at, outcome: "failed", ...(tags.lastRun.step ? { step: tags.lastRun.step } : {}) };
  switch (tags.rotationState) {
    case "failed":
      return { at: tags.rotationUpdatedAt ?? null, outcome: "failed" };
    case "rotating":
      return { at: tags.rotationUpdatedAt ?? null, outcome: "running" };
    case "grace-period":
      return { at: tags.creatioSyncedAt ?? tags.rotationUpdatedAt ?? null, outcome: "succeeded" };
    case "idle":
      if (tags.lastRun?.kind === "rotate") return { at: tags.lastRun.at, outcome: "succeeded" };
      if (tags.lastRun?.kind === "onboard") return null;
      return tags.previousKeyId ? { at: tags.creatioSyncedAt ?? tags.rotationUpdatedAt ?? null, outcome: "succeeded" } : null;
  }
}
