import { z } from "zod";
import { currentSecretProperties } from "../clients/keyVault";
import { secretNameFor } from "../domain/site";
import { DAY_MS, isFreshEnough, isInRotationWindow } from "../domain/rotationPlan";
import { ourSecret } from "../domain/managedSecret";
import { FinalError } from "../domain/failure";
import { mergeSiteTags, type SiteTagsChange } from "../domain/tags";
import { appPasswords, type AppPassword } from "./rotationPasswords";
import { activityFields, defaultDeps, siteCredentialFor, type ActivityDeps } from "./shared";

/**
 * Rotation step 1: read the site from Key Vault (tags and expiry of the current version; the value
 * is not used) and its app's passwords from Graph, and mark the site `rotating`. Returns what the
 * orchestrator needs to decide the rest, so it reads no clock and no setting itself (docs/architecture.md, "Orchestrators are deterministic").
 *
 * Never remove the password Creatio holds (docs/architecture.md, "Rotation never breaks mail sync"):
 * when Creatio does not hold the current keyId (a failed rotation), its keyId (creatioSyncedKeyId)
 * is written to previousKeyId before any new password is issued, because issueClientSecret keeps
 * exactly keyId and previousKeyId when it clears this instance's leftovers.
 *
 * Idempotent: a retry or replay writes the same tags again.
 */
export const BEGIN_ROTATION = "beginRotation";

export const beginRotationInput = activityFields.pick({ host: true, instanceId: true, tenantId: true });
export type BeginRotationInput = z.infer<typeof beginRotationInput>;

export interface RotationSite {
  host: string;
  secretName: string;
  /** Current Key Vault version and the keyId it holds. */
  version: string;
  keyId: string;
  /** Key Vault expiry of the current version (ISO 8601); null when none is recorded. */
  expiresOn: string | null;
  /** The current version expires within ROTATE_DAYS_BEFORE_EXPIRY days (or has expired). */
  currentDue: boolean;
  /**
   * The current version is recent enough to deliver instead of issuing another (isFreshEnough):
   * what an earlier run issued and then failed to give Creatio, even when it is shorter-lived than
   * the rotation window.
   */
  currentFresh: boolean;
  /** The current keyId is still a password of the app. */
  currentExists: boolean;
  /** keyId Creatio holds, as far as the tags know; null when Creatio never received a secret of the app. */
  creatioHeldKeyId: string | null;
  /** previousKeyId after this step (see the class comment). */
  previousKeyId: string | null;
  appId: string;
  appObjectId: string;
  servicePrincipalId: string | null;
  creatioCredentialSecretName: string;
  mailServerId: string;
  scopes: string[];
  /** Lifetime for a new password: the current one's (what onboarding chose, maybe a tenant policy cap), else 730. */
  secretLifetimeDays: number;
}

export class SiteNotManagedError extends Error {
  override name = "SiteNotManagedError";
}

const MAX_LIFETIME_DAYS = 730;

export async function beginRotation(rawInput: BeginRotationInput, deps: ActivityDeps = defaultDeps(rawInput)): Promise<RotationSite> {
  const input = beginRotationInput.parse(rawInput);
  const secretName = secretNameFor(input.host);
  const properties = await currentSecretProperties(deps.secrets, secretName);
  if (!properties) throw new SiteNotManagedError(`No Key Vault secret ${secretName}: ${input.host} is not managed here`);
  const ours = ourSecret(properties);
  if (!ours) throw new SiteNotManagedError(`Key Vault secret ${secretName} is not one of ours (contentType)`);
  if (!ours.tags) throw new SiteNotManagedError(`The tags of ${secretName} are not a site's tags: ${ours.problem}`);
  const tags = ours.tags;
  // The clients were chosen for the tenant the starter read from these tags; a site never changes
  // tenant, so a difference means the tags were edited by hand since: nothing is done in the wrong tenant.
  if ((tags.tenantId ?? undefined)?.toLowerCase() !== input.tenantId?.toLowerCase())
    throw new FinalError(`The tags of ${secretName} name tenant ${tags.tenantId ?? "(home)"}, but this rotation was started for ${input.tenantId ?? "the home tenant"}: start it again`);
  const now = deps.now();
  // Two independent reads, overlapped (issue 12): before anything is issued the site's credential
  // must still be bound to it (creatioSite tag), and the app's passwords say whether the current
  // keyId still exists and how long-lived it is.
  const [, passwords] = await Promise.all([siteCredentialFor(deps, input.host, tags.creatioCredential), appPasswords(deps, tags.appObjectId)]);
  const current = passwords.find((p) => p.keyId === tags.keyId);

  const creatioHeldKeyId = tags.creatioSyncedKeyId ?? null;
  const previousKeyId = creatioHeldKeyId && creatioHeldKeyId !== tags.keyId ? creatioHeldKeyId : (tags.previousKeyId ?? null);

  const change: SiteTagsChange = {
    rotationState: "rotating",
    rotationUpdatedAt: now.toISOString(),
    previousKeyId,
  };
  await deps.secrets.updateSecretProperties(secretName, properties.version!, { tags: mergeSiteTags(properties.tags, change) });

  return {
    host: input.host,
    secretName,
    version: properties.version!,
    keyId: tags.keyId,
    expiresOn: properties.expiresOn ? properties.expiresOn.toISOString() : null,
    currentDue: isInRotationWindow(properties.expiresOn, now, deps.rotateDaysBeforeExpiry),
    currentFresh: current !== undefined && isFreshEnough(properties.expiresOn, lifetimeDays(current), now, deps.rotateDaysBeforeExpiry),
    currentExists: current !== undefined,
    creatioHeldKeyId,
    previousKeyId,
    appId: tags.appId,
    appObjectId: tags.appObjectId,
    servicePrincipalId: tags.servicePrincipalId ?? null,
    creatioCredentialSecretName: tags.creatioCredential,
    mailServerId: tags.mailServerId,
    scopes: tags.scopes ? tags.scopes.split(/\s+/).filter(Boolean) : [],
    secretLifetimeDays: lifetimeDays(current),
  };
}

function lifetimeDays(password: AppPassword | undefined): number {
  const start = password?.startDateTime ? Date.parse(password.startDateTime) : NaN;
  const end = password?.endDateTime ? Date.parse(password.endDateTime) : NaN;
  if (!Number.isFinite(start) || !Number.isFinite(end) || end <= start) return MAX_LIFETIME_DAYS;
  return Math.min(MAX_LIFETIME_DAYS, Math.max(1, Math.round((end - start) / DAY_MS)));
}

export const beginRotationActivity = {
  name: BEGIN_ROTATION,
  handler: (input: unknown) => beginRotation(input as BeginRotationInput),
};
