import type { SecretProperties } from "@azure/keyvault-secrets";
import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from "@azure/functions";
import * as df from "durable-functions";
import type { DurableClient, DurableOrchestrationStatus } from "durable-functions";
import {
  onboardRequestSchema,
  toFieldErrors,
  type ErrorResponse,
  type RotationStatus,
  type TenantStatus,
  type TenantSummary,
} from "../api/schemas";
import { CreatioCredentialError, readSiteCredential } from "../clients/creatio";
import { allSettledOnKeyVault, currentSecretProperties, getSecretClient, isSecretNotFound, type SecretStore } from "../clients/keyVault";
import { mailStatus } from "../domain/ews";
import { offboardingInstanceIdFor, onboardingInstanceIdFor, parseCreatioUrl, redirectUriFor, secretNameFor } from "../domain/site";
import { applicationRestorableUntil, offboardedMark, offboardingRequested, restoreAdvice } from "../domain/offboarding";
import { ourSecret } from "../domain/managedSecret";
import { decodeSiteTags, type CreatioCheck, type SiteTags } from "../domain/tags";
import { DEFAULT_PERMISSION_PROFILE, findProfile, knownProfiles, type PermissionProfile } from "../domain/permissions";
import { bySoonestExpiry, DAY_MS, daysLeft, lastRotationFromTags, planSite, type SitePlan } from "../domain/rotationPlan";
import { HEALTH_ORDER, siteHealth, unmanagedHealth } from "../domain/health";
import { publicMessage } from "../domain/failure";
import type { StepProgress } from "../orchestrators/steps";
import { checkCreatioLink } from "./creatioLink";
import { rotationStatus } from "./startRotation";
import { answeringSettingsErrors, badRequest, json, keyVaultUnavailable, routeHost, siteNotManaged } from "./responses";
import { readJsonBody } from "./requestBody";
import { activeSiteInstance, conflictMessage, instanceStatus, isActive, startExclusive, tenantOfRun } from "./startExclusive";
import { settings } from "../settings";
import { resolveTenantId } from "../clients/entra";
import { httpTriggerFor } from "../api/openapi";
import { ONBOARD_TENANT, type OnboardTenantInput } from "../orchestrators/onboardTenant";

/**
 * The tenants HTTP API (docs/architecture.md, "Layers"; README "Onboard the first Creatio site"). Nothing here returns or logs a secret value: Key Vault
 * is read for properties and tags; the Creatio credential is only checked to exist and to have
 * the documented shape.
 */

export interface TenantsDeps {
  secrets: SecretStore;
  now: () => Date;
  /** ROTATE_DAYS_BEFORE_EXPIRY, for the due rule; the setting's default when omitted. */
  rotateDaysBeforeExpiry?: number;
  /** Reads live which app Creatio's mail server uses (status of one site); not asked when omitted. */
  checkCreatio?: (tags: SiteTags, now: Date) => Promise<CreatioCheck>;
  /** CREATIO_ALLOW_LOOPBACK: a creatioUrl may be a loopback address; false when omitted. */
  allowLoopback?: boolean;
  /** PERMISSION_PROFILES: the operator's profiles beside the built-in ones; none when omitted. */
  permissionProfiles?: PermissionProfile[];
  /** AZURE_TENANT_ID: the home tenant's id, shown for its sites; unknown when omitted. */
  homeTenantId?: string;
  /** Other tenants (issue 10): PROVISIONER_CLIENT_ID is set, how long an onboarding waits for consent, and a tenant name (id or domain) to its id. */
  tenants?: TenantDeps;
}

export interface TenantDeps {
  /** PROVISIONER_CLIENT_ID is set: sites of other tenants can be onboarded. */
  provisioner: boolean;
  adminConsentWaitHours: number;
  /** The tenant's id, or undefined when Entra has no such tenant; throws when Entra cannot be asked. */
  resolve: (name: string) => Promise<string | undefined>;
}

const DEFAULT_ROTATE_DAYS = 30;

const defaultDeps = (): TenantsDeps => {
  const s = settings();
  const secrets = getSecretClient();
  return {
    secrets,
    now: () => new Date(),
    rotateDaysBeforeExpiry: s.ROTATE_DAYS_BEFORE_EXPIRY,
    allowLoopback: s.CREATIO_ALLOW_LOOPBACK,
    permissionProfiles: s.PERMISSION_PROFILES,
    ...(s.AZURE_TENANT_ID ? { homeTenantId: s.AZURE_TENANT_ID } : {}),
    tenants: {
      provisioner: s.PROVISIONER_CLIENT_ID !== undefined,
      adminConsentWaitHours: s.ADMIN_CONSENT_WAIT_HOURS,
      resolve: (name) => resolveTenantId(s.AZURE_AUTHORITY_HOST ?? "https://login.microsoftonline.com", name),
    },
    checkCreatio: (tags, now) => checkCreatioLink(secrets, tags, now),
  };
};

/** The tenant fields of a site: its tags' tenant, else the home tenant. */
export function tenantFields(tenantId: string | undefined, homeTenantId: string | undefined): { entraTenantId: string | null; homeTenant: boolean } {
  if (tenantId && tenantId.toLowerCase() !== homeTenantId?.toLowerCase()) return { entraTenantId: tenantId, homeTenant: false };
  return { entraTenantId: homeTenantId ?? null, homeTenant: true };
}

/** Rotation facts of a site from its plan (the sweep's own rule): tags and expiry only, never a value. */
export function rotationOf(tags: SiteTags, plan: SitePlan): RotationStatus {
  const last = lastRotationFromTags(tags);
  return {
    state: tags.rotationState,
    lastRotatedAt: last?.at ?? null,
    lastOutcome: last?.outcome ?? null,
    lastFailedStep: last?.step ?? null,
    currentKeyId: tags.keyId,
    previousKeyId: tags.previousKeyId ?? null,
    expiresOn: iso(plan.expiresOn),
    daysLeft: plan.daysLeft,
    currentSecretExpiresOn: iso(plan.currentExpiresOn),
    nextRotationDueAt: iso(plan.nextRotationDueAt),
    due: plan.due,
    dueReason: plan.reason ?? null,
  };
}

/** The plan and verdict of a managed site: one computation for the status, the list and the sweep. */
export function assess(host: string, secretName: string, tags: SiteTags, expiresOn: Date | undefined, now: Date, rotateDaysBeforeExpiry: number, creatioCheck?: CreatioCheck | null) {
  const plan = planSite({ host, secretName, expiresOn, tags }, now, rotateDaysBeforeExpiry);
  const mail = mailStatus(tags.mailReadiness, tags.appId, now);
  return { plan, rotation: rotationOf(tags, plan), mail, health: siteHealth(plan, tags, { rotateDaysBeforeExpiry, now, creatioCheck, mail }) };
}

/** POST /api/tenants: validate, check the Creatio credential secret, start onboardTenant. */
export async function createTenant(request: HttpRequest, client: DurableClient, context: InvocationContext, deps: TenantsDeps = defaultDeps()): Promise<HttpResponseInit> {
  // Size, JSON, depth, password-like fields, control characters: 413/400 (src/functions/requestBody.ts).
  const read = await readJsonBody(request);
  if (!read.ok) return read.response;
  const parsed = onboardRequestSchema.safeParse(read.body);
  if (!parsed.success) return badRequest("Invalid request", toFieldErrors(parsed.error));
  const request_ = parsed.data;
  const site = parseCreatioUrl(request_.creatioUrl, { allowLoopback: deps.allowLoopback ?? false });
  if (!site.ok) return badRequest("Invalid request", [{ path: "creatioUrl", message: `creatioUrl ${site.problem}` }]);
  // The profile is resolved here, so the orchestrator gets data and reads no setting ("Orchestrators are deterministic").
  const profile = findProfile(request_.permissionProfile, deps.permissionProfiles);
  if (!profile) {
    const known = knownProfiles(deps.permissionProfiles).map((p) => p.name);
    return badRequest("Invalid request", [{ path: "permissionProfile", message: `permissionProfile ${request_.permissionProfile} is not a known profile; known: ${known.join(", ")}` }]);
  }

  // The site's Entra tenant, when the request names one: resolved to its id, and refused when this
  // deployment cannot serve it (docs/architecture.md, "Serving several tenants").
  let requestedTenant: string | undefined;
  if (request_.entraTenantId !== undefined) {
    const resolved = await resolveRequestedTenant(request_.entraTenantId, deps, context);
    if (!resolved.ok) return resolved.response;
    requestedTenant = resolved.tenantId;
  }

  // Two independent Key Vault reads, at once (docs/architecture.md, "Upstream calls per onboarding"):
  // the credential, checked here so a typo or a credential not bound to this site answers 400 now
  // (its version goes to the steps, which read that version, from this process's cache when they
  // run here); and the site's secret, for its tags only (the value is dropped here and never leaves).
  const secretName = secretNameFor(site.site.host);
  const [credentialRead, siteRead] = await allSettledOnKeyVault(deps.secrets, [
    () => readSiteCredential(deps.secrets, request_.creatioCredentialSecretName, site.site.host),
    () => deps.secrets.getSecret(secretName),
  ] as const);
  if (credentialRead.status === "rejected") {
    const error: unknown = credentialRead.reason;
    if (isSecretNotFound(error)) {
      return badRequest("Invalid request", [
        { path: "creatioCredentialSecretName", message: `creatioCredentialSecretName: Key Vault has no secret named ${request_.creatioCredentialSecretName}: check the name, or store the site's Creatio credential under it first (README, "Onboard the first Creatio site")` },
      ]);
    }
    if (error instanceof CreatioCredentialError) {
      return badRequest("Invalid request", [{ path: "creatioCredentialSecretName", message: `creatioCredentialSecretName: ${(error as Error).message}` }]);
    }
    return keyVaultUnavailable(context, request_.creatioCredentialSecretName, error);
  }

  // The profile the site has now (its tags; creatio-ews before profiles existed): what a change of
  // profile takes away. A profile no longer defined cannot be narrowed: nothing is taken away.
  let previousProfile: PermissionProfile | undefined;
  let knownAppId: string | null = null;
  let siteTags: Record<string, string> | undefined;
  if (siteRead.status === "fulfilled") siteTags = siteRead.value.properties.tags;
  else if (!isSecretNotFound(siteRead.reason)) return keyVaultUnavailable(context, secretName, siteRead.reason);
  else {
    // An offboarded site (docs/architecture.md, "Offboarding"), or one whose secret was deleted by
    // hand: its secret is soft-deleted, and Key Vault keeps the name reserved until it is recovered or
    // purged (purge protection forbids the purge). Recover it, so the onboarding writes its new
    // version there; a restored app is reused (issueClientSecret keeps a live password), a gone one is
    // registered anew.
    const recovered = await recoverOffboardedSecret(client, context, deps, site.site.host, secretName);
    if (!recovered.ok) return recovered.response;
    siteTags = recovered.tags;
  }
  // A site stays in its tenant: its app, grants and allow-list entry live there. A request without
  // entraTenantId means the site's own tenant, so a repeated POST resumes as before.
  let siteTenant: string | undefined;
  if (siteTags) {
    const decoded = decodeSiteTags(siteTags);
    if (decoded.ok) {
      siteTenant = decoded.tags.tenantId;
      const inTags = tenantFields(decoded.tags.tenantId, deps.homeTenantId);
      const asked = request_.entraTenantId === undefined ? inTags : tenantFields(requestedTenant, deps.homeTenantId);
      if (asked.homeTenant !== inTags.homeTenant || (!asked.homeTenant && asked.entraTenantId !== inTags.entraTenantId)) {
        return json(409, {
          error: `${site.site.host} is managed in ${inTags.homeTenant ? "the app's home tenant" : `tenant ${inTags.entraTenantId}`}, not ${asked.homeTenant ? "the home tenant" : `tenant ${asked.entraTenantId}`}: a site stays in the tenant it was onboarded in. Omit entraTenantId to onboard it again there, or offboard it first (DELETE /api/tenants/${site.site.host}) and then onboard it in the other tenant.`,
        } satisfies ErrorResponse);
      }
      knownAppId = decoded.tags.appId;
      const name = decoded.tags.permissionProfile ?? DEFAULT_PERMISSION_PROFILE;
      previousProfile = findProfile(name, deps.permissionProfiles);
      if (!previousProfile) context.warn(`${site.site.host} was onboarded with the permission profile ${name}, which is no longer defined: its scopes are not taken away.`);
    }
  }

  const tenantOfRun = request_.entraTenantId !== undefined ? requestedTenant : siteTenant;
  if (tenantOfRun && !deps.tenants?.provisioner) {
    return badRequest("Invalid request", [{ path: "entraTenantId", message: provisionerMissing(tenantOfRun) }]);
  }
  const input: OnboardTenantInput = {
    host: site.site.host,
    creatioCredentialSecretName: request_.creatioCredentialSecretName,
    ...(credentialRead.value.version ? { creatioCredentialVersion: credentialRead.value.version } : {}),
    knownAppId,
    displayName: request_.displayName,
    secretLifetimeDays: request_.secretLifetimeDays,
    mailServerId: request_.mailServerId,
    allowUserConsent: request_.allowUserConsent,
    takeOver: request_.takeOver,
    enableEwsForTenant: request_.enableEwsForTenant,
    profile,
    ...(previousProfile ? { previousProfile } : {}),
    ...(tenantOfRun ? { tenantId: tenantOfRun, adminConsentWaitHours: deps.tenants?.adminConsentWaitHours ?? 168 } : {}),
  };
  const result = await startExclusive(client, "onboard", ONBOARD_TENANT, site.site.host, input);
  if (!result.started) {
    return json(409, { error: conflictMessage(site.site.host, result), instanceId: result.blockedBy } satisfies ErrorResponse);
  }
  const instanceId = result.instanceId;
  context.log(`Started ${ONBOARD_TENANT} ${instanceId}`);
  return client.createCheckStatusResponse(request, instanceId);
}

const provisionerMissing = (tenantId: string) =>
  `entraTenantId: tenant ${tenantId} is not this app's home tenant, and this deployment serves its home tenant only: PROVISIONER_CLIENT_ID is not set (README, "Serving several Microsoft 365 tenants", says how to create the provisioner)`;

/** entraTenantId (an id or a verified domain) → the tenant's id, undefined for the home tenant; or the answer to give. */
async function resolveRequestedTenant(
  name: string,
  deps: TenantsDeps,
  context: InvocationContext,
): Promise<{ ok: true; tenantId: string | undefined } | { ok: false; response: HttpResponseInit }> {
  if (deps.homeTenantId && name === deps.homeTenantId.toLowerCase()) return { ok: true, tenantId: undefined };
  if (!deps.tenants) return { ok: false, response: badRequest("Invalid request", [{ path: "entraTenantId", message: provisionerMissing(name) }]) };
  let tenantId: string | undefined;
  try {
    tenantId = await deps.tenants.resolve(name);
  } catch (error) {
    context.error(`Resolving entraTenantId ${name} failed: ${(error as Error)?.message}`);
    return { ok: false, response: json(503, { error: `${publicMessage(error)}. Try again shortly; AZURE_AUTHORITY_HOST names the Entra endpoint.` } satisfies ErrorResponse) };
  }
  if (!tenantId) {
    return { ok: false, response: badRequest("Invalid request", [{ path: "entraTenantId", message: `entraTenantId: Entra ID has no tenant ${name}: check the tenant id, or use one of the tenant's verified domains (e.g. contoso.onmicrosoft.com)` }]) };
  }
  if (deps.homeTenantId && tenantId === deps.homeTenantId.toLowerCase()) return { ok: true, tenantId: undefined };
  return { ok: true, tenantId };
}

/**
 * The site's secret is not there: recovers it when it was soft-deleted by an offboarding. The
 * recovered secret's tags, or none when there was nothing to recover (a new site); else the answer to give.
 */
async function recoverOffboardedSecret(
  client: DurableClient,
  context: InvocationContext,
  deps: TenantsDeps,
  host: string,
  secretName: string,
): Promise<{ ok: true; tags?: Record<string, string> } | { ok: false; response: HttpResponseInit }> {
  let deleted;
  try {
    deleted = await deps.secrets.getDeletedSecret(secretName);
  } catch (error) {
    if (isSecretNotFound(error)) return { ok: true };
    return { ok: false, response: keyVaultUnavailable(context, `deleted secret ${secretName}`, error) };
  }
  if (!ourSecret({ ...deleted.properties, name: secretName })?.tags) return { ok: true };
  // Not while an offboarding (or anything else) of the site runs: it would delete what this recovers.
  const active = await activeSiteInstance(client, "onboard", host);
  if (active)
    return { ok: false, response: json(409, { error: conflictMessage(host, { blockedBy: active.instanceId, runtimeStatus: active.runtimeStatus }), instanceId: active.instanceId } satisfies ErrorResponse) };
  try {
    const poller = await deps.secrets.beginRecoverDeletedSecret(secretName);
    await poller.pollUntilDone();
  } catch (error) {
    context.error(`Recovering the deleted Key Vault secret ${secretName} failed: ${(error as Error)?.message}`);
    return { ok: false, response: json(503, { error: `The offboarded site's Key Vault secret ${secretName} could not be recovered: ${publicMessage(error)}` } satisfies ErrorResponse) };
  }
  context.log(`Recovered the deleted Key Vault secret ${secretName} of the offboarded site ${host} before onboarding it again`);
  return { ok: true, tags: deleted.properties.tags };
}

function iso(date: Date | string | undefined | null): string | null {
  if (!date) return null;
  const d = typeof date === "string" ? new Date(date) : date;
  return Number.isNaN(d.getTime()) ? null : d.toISOString();
}

/** GET /api/tenants/{host}: Key Vault tags + Durable status of the site's onboarding. */
export async function getTenant(request: HttpRequest, client: DurableClient, context: InvocationContext, deps: TenantsDeps = defaultDeps()): Promise<HttpResponseInit> {
  const route = routeHost(request);
  if (!route.ok) return route.response;
  const { host } = route;
  const secretName = secretNameFor(host);

  let properties: SecretProperties | undefined;
  try {
    properties = await currentSecretProperties(deps.secrets, secretName);
  } catch (error) {
    return keyVaultUnavailable(context, secretName, error);
  }
  // An offboarded site's secret is soft-deleted; its tags stay readable there (docs/architecture.md, "Offboarding").
  let deleted: DeletedSiteSecret | undefined;
  if (!properties) {
    try {
      deleted = await readDeletedSiteSecret(deps.secrets, secretName);
    } catch (error) {
      return keyVaultUnavailable(context, `deleted secret ${secretName}`, error);
    }
  }
  const instanceId = onboardingInstanceIdFor(host);
  // The site's three orchestrations, read at once.
  const [status, rotationRun, offboardRun] = await Promise.all([
    // With its input: a site waiting for consent has no tags yet, only its run names its tenant.
    instanceStatus(client, instanceId, { showInput: true }),
    rotationStatus(client, host),
    instanceStatus(client, offboardingInstanceIdFor(host)),
  ]);
  if (!properties && !deleted && !status && !offboardRun) return siteNotManaged(host);

  const decoded = properties ? decodeSiteTags(properties.tags) : deleted ? decodeSiteTags(deleted.tags) : undefined;
  const tags = decoded?.ok ? decoded.tags : undefined;
  // A live secret means the site is not offboarded, whatever an earlier offboarding did.
  const offboarded = properties ? null : offboardedInfo(host, secretName, deleted, status, offboardRun);
  const state: TenantStatus["state"] = offboarded ? "offboarded" : isActive(offboardRun) || offboardingRequested(properties ? tags : undefined) ? "offboarding" : "managed";
  const output = (status?.runtimeStatus === "Completed" ? status.output : undefined) as
    | { appId?: string; applicationObjectId?: string; servicePrincipalId?: string; grantedScopes?: string[]; permissionProfile?: string; creatio?: { passwordMailboxesCleared?: number | null } }
    | undefined;
  const passwordMailboxesCleared = output?.creatio?.passwordMailboxesCleared ?? null;
  const now = deps.now();
  const window = deps.rotateDaysBeforeExpiry ?? DEFAULT_ROTATE_DAYS;
  // What Creatio's mail uses now, read live: the tags only say what was written.
  const check = tags && !offboarded && deps.checkCreatio ? await deps.checkCreatio(tags, now) : null;
  const assessed = tags && !offboarded ? assess(host, secretName, tags, properties?.expiresOn, now, window, check) : undefined;
  const permissionProfile = tags ? (tags.permissionProfile ?? DEFAULT_PERMISSION_PROFILE) : (output?.permissionProfile ?? null);
  // A site waiting for consent has no tags yet: its tenant is the one its onboarding was started for.
  const onboardingTenant = tenantOfRun(status);
  const waiting = isActive(status) ? progressOf(status!.customStatus) : null;
  const adminConsent = waiting?.adminConsentUrl && waiting.waitingUntil ? { url: waiting.adminConsentUrl, tenantId: waiting.tenantId ?? onboardingTenant ?? "", waitingUntil: waiting.waitingUntil } : null;
  const body: TenantStatus = {
    host,
    creatioUrl: `https://${host}`,
    ...tenantFields(tags?.tenantId ?? onboardingTenant, deps.homeTenantId),
    adminConsent,
    redirectUri: redirectUriFor(host, findProfile(permissionProfile ?? undefined, deps.permissionProfiles)),
    permissionProfile,
    appId: tags?.appId ?? output?.appId ?? null,
    applicationObjectId: tags?.appObjectId ?? output?.applicationObjectId ?? null,
    servicePrincipalId: tags?.servicePrincipalId ?? output?.servicePrincipalId ?? null,
    grantedScopes: tags?.scopes ? tags.scopes.split(/\s+/).filter(Boolean) : (output?.grantedScopes ?? []),
    secret: properties
      ? { name: secretName, version: properties.version ?? null, keyId: tags?.keyId ?? null, expiresOn: iso(properties.expiresOn), daysLeft: daysLeft(properties.expiresOn, now) }
      : null,
    creatio: {
      credentialSecretName: tags?.creatioCredential ?? null,
      mailServerId: tags?.mailServerId ?? null,
      syncedAt: tags?.creatioSyncedAt ?? null,
      syncedKeyId: tags?.creatioSyncedKeyId ?? null,
      secretExpiresOn: iso(assessed?.plan.expiresOn),
      holdsCurrentSecret: assessed?.plan.creatioCurrent ?? false,
      check,
      drift: check ? (check.state === "unreachable" ? null : check.state === "drift") : null,
      passwordMailboxesCleared,
    },
    rotationState: tags?.rotationState ?? null,
    rotation: assessed?.rotation ?? null,
    rotationRun: rotationRun
      ? {
          instanceId: rotationRun.instanceId,
          runtimeStatus: String(rotationRun.runtimeStatus),
          currentStep: progressOf(rotationRun.customStatus),
          graceEndsAt: progressOf(rotationRun.customStatus)?.graceEndsAt ?? null,
          error: rotationRun.runtimeStatus === "Failed" ? publicMessage(rotationRun.output ?? "failed", 600) : null,
          createdTime: iso(rotationRun.createdTime),
          lastUpdatedTime: iso(rotationRun.lastUpdatedTime),
        }
      : null,
    onboarding: status ? runOf(instanceId, status) : null,
    state,
    offboarded,
    offboarding: offboardRun ? runOf(offboardingInstanceIdFor(host), offboardRun) : null,
    health:
      (offboarded ? offboardedHealth(host, offboarded) : undefined) ??
      assessed?.health ??
      unmanagedHealth(
        host,
        status
          ? { runtimeStatus: String(status.runtimeStatus), step: progressOf(status.customStatus)?.step, error: status.runtimeStatus === "Failed" ? publicMessage(status.output ?? "failed", 600) : null, adminConsent }
          : null,
        decoded && !decoded.ok ? decoded.problem : undefined,
      ),
    mail: assessed?.mail ?? null,
    lastRun: tags?.lastRun ?? null,
    warnings: [
      ...shortLifetimeWarning(properties, window),
      ...(passwordMailboxesCleared
        ? [
            `Linking the OAuth application cleared the stored password of ${passwordMailboxesCleared} mailbox${passwordMailboxesCleared === 1 ? "" : "es"} on Creatio's mail server (basic authentication), as Creatio's own mail server page does: ` +
              `their users must connect their mailbox again in Creatio with Microsoft sign-in.`,
          ]
        : []),
    ],
  };
  return json(200, body);
}

function runOf(instanceId: string, status: DurableOrchestrationStatus) {
  return {
    instanceId,
    runtimeStatus: String(status.runtimeStatus),
    currentStep: progressOf(status.customStatus),
    error: status.runtimeStatus === "Failed" ? publicMessage(status.output ?? "failed", 600) : null,
    createdTime: iso(status.createdTime),
    lastUpdatedTime: iso(status.lastUpdatedTime),
  };
}

/** A site's soft-deleted secret, when it is a managed site's that was offboarded: its tags and dates (never a value). */
export interface DeletedSiteSecret {
  tags: Record<string, string>;
  offboardedAt: string;
  instanceId: string | null;
  deletedOn: string | null;
  scheduledPurgeDate: string | null;
  vaultName: string | undefined;
  appObjectId: string | null;
}

/** The offboarded site's deleted secret (Get Deleted Secret), or undefined when there is none or it does not carry the offboarded mark. */
export async function readDeletedSiteSecret(secrets: Pick<SecretStore, "getDeletedSecret">, secretName: string): Promise<DeletedSiteSecret | undefined> {
  let deleted;
  try {
    deleted = await secrets.getDeletedSecret(secretName);
  } catch (error) {
    if (isSecretNotFound(error)) return undefined;
    throw error;
  }
  return deletedSiteSecretOf(secretName, deleted.properties);
}

export function deletedSiteSecretOf(
  secretName: string,
  properties: { contentType?: string; tags?: Record<string, string>; deletedOn?: Date; scheduledPurgeDate?: Date; vaultUrl?: string },
): DeletedSiteSecret | undefined {
  const ours = ourSecret({ ...properties, name: secretName });
  const mark = offboardedMark(ours?.tags);
  if (!ours?.tags || !mark) return undefined;
  let vaultName: string | undefined;
  try {
    vaultName = properties.vaultUrl ? new URL(properties.vaultUrl).hostname.split(".")[0] : undefined;
  } catch {
    vaultName = undefined;
  }
  return {
    tags: properties.tags ?? {},
    offboardedAt: mark.at,
    instanceId: mark.instanceId ?? null,
    deletedOn: iso(properties.deletedOn),
    scheduledPurgeDate: iso(properties.scheduledPurgeDate),
    vaultName,
    appObjectId: ours.tags.appObjectId,
  };
}

/**
 * The site is offboarded when its secret is soft-deleted with the offboarded mark, or, for a site
 * that never had a secret (an onboarding that failed early), when its offboarding completed after
 * its last onboarding began.
 */
function offboardedInfo(
  host: string,
  secretName: string,
  deleted: DeletedSiteSecret | undefined,
  onboarding: DurableOrchestrationStatus | undefined,
  offboarding: DurableOrchestrationStatus | undefined,
): TenantStatus["offboarded"] {
  if (deleted) {
    return {
      at: deleted.offboardedAt,
      instanceId: deleted.instanceId,
      secretDeletedOn: deleted.deletedOn,
      secretPurgeOn: deleted.scheduledPurgeDate,
      applicationRestorableUntil: applicationRestorableUntil(deleted.offboardedAt),
      restore: restoreAdvice({ host, secretName, vaultName: deleted.vaultName, appObjectId: deleted.appObjectId, offboardedAt: deleted.offboardedAt, secretPurgeOn: deleted.scheduledPurgeDate }),
    };
  }
  const at = offboardedWithoutSecretAt(onboarding, offboarding);
  if (!at) return null;
  return {
    at,
    instanceId: offboardingInstanceIdFor(host),
    secretDeletedOn: null,
    secretPurgeOn: null,
    applicationRestorableUntil: applicationRestorableUntil(at),
    restore: `The site had no secret in Key Vault. To manage it again: POST /api/tenants with its creatioUrl (https://${host}) and creatioCredentialSecretName.`,
  };
}

/** When an offboarding completed after the site's last onboarding began (a site without a secret); undefined otherwise. */
export function offboardedWithoutSecretAt(onboarding: DurableOrchestrationStatus | undefined, offboarding: DurableOrchestrationStatus | undefined): string | undefined {
  if (offboarding?.runtimeStatus !== "Completed") return undefined;
  const done = iso(offboarding.lastUpdatedTime);
  if (!done) return undefined;
  const onboardStarted = onboarding ? iso(onboarding.createdTime) : null;
  return onboardStarted && onboardStarted > done ? undefined : done;
}

function offboardedHealth(host: string, offboarded: { at: string; restore: string }) {
  return {
    state: "broken" as const,
    mailStopsOn: null,
    daysUntilMailStops: null,
    problems: [`${host} was offboarded on ${offboarded.at}: Creatio's Office 365 mail no longer syncs through this app. ${offboarded.restore}`],
  };
}

/**
 * GET /api/tenants[?include=offboarded]: every site whose secret carries our contentType;
 * properties only, no values (docs/architecture.md, "Key Vault is the registry"). Offboarded sites
 * (their secret soft-deleted) only with include=offboarded, from the vault's deleted secrets.
 */
export async function listTenants(request: HttpRequest, context: InvocationContext, deps: TenantsDeps = defaultDeps()): Promise<HttpResponseInit> {
  const include = request.query.getAll("include").flatMap((v) => v.split(",")).map((v) => v.trim()).filter(Boolean);
  const unknown = include.filter((v) => v !== "offboarded");
  if (unknown.length > 0) return badRequest("Invalid request", [{ path: "include", message: `include must be offboarded, got ${unknown.join(", ").slice(0, 100)}` }]);
  const now = deps.now();
  const sites: TenantSummary[] = [];
  try {
    for await (const properties of deps.secrets.listPropertiesOfSecrets()) {
      const ours = ourSecret(properties);
      const host = ours?.host;
      if (!host) continue;
      const tags = ours.tags;
      const assessed = tags ? assess(host, properties.name, tags, properties.expiresOn, now, deps.rotateDaysBeforeExpiry ?? DEFAULT_ROTATE_DAYS) : undefined;
      sites.push({
        host,
        secretName: properties.name,
        ...tenantFields(tags?.tenantId, deps.homeTenantId),
        appId: tags?.appId ?? null,
        keyId: tags?.keyId ?? null,
        expiresOn: iso(assessed?.plan.expiresOn),
        daysLeft: assessed?.plan.daysLeft ?? null,
        creatioSyncedAt: tags?.creatioSyncedAt ?? null,
        rotationState: tags?.rotationState ?? null,
        rotation: assessed?.rotation ?? null,
        health: assessed?.health ?? unmanagedHealth(host, null, ours.problem),
        mail: assessed?.mail ?? null,
        lastRun: tags?.lastRun ?? null,
        // The secret still exists: an offboarding asked for but not finished (DELETE again resumes it).
        state: offboardingRequested(tags) ? "offboarding" : "managed",
        offboardedAt: null,
      });
    }
    if (include.includes("offboarded")) {
      for await (const item of deps.secrets.listDeletedSecrets()) {
        const properties = { ...item.properties, name: item.name };
        const deleted = deletedSiteSecretOf(item.name, item.properties);
        const decoded = deleted ? decodeSiteTags(deleted.tags) : undefined;
        if (!deleted || !decoded?.ok) continue;
        const tags = decoded.tags;
        const restore = restoreAdvice({ host: tags.site, secretName: properties.name, vaultName: deleted.vaultName, appObjectId: deleted.appObjectId, offboardedAt: deleted.offboardedAt, secretPurgeOn: deleted.scheduledPurgeDate });
        sites.push({
          host: tags.site,
          secretName: properties.name,
          ...tenantFields(tags.tenantId, deps.homeTenantId),
          appId: tags.appId,
          keyId: tags.keyId,
          expiresOn: null,
          daysLeft: null,
          creatioSyncedAt: tags.creatioSyncedAt ?? null,
          rotationState: tags.rotationState,
          rotation: null,
          health: offboardedHealth(tags.site, { at: deleted.offboardedAt, restore }),
          mail: null,
          lastRun: tags.lastRun ?? null,
          state: "offboarded",
          offboardedAt: deleted.offboardedAt,
        });
      }
    }
  } catch (error) {
    return keyVaultUnavailable(context, "the list of secrets", error);
  }
  // Least healthy first, then the soonest stop: the sites that need attention lead; offboarded ones last.
  sites.sort((a, b) => Number(a.state === "offboarded") - Number(b.state === "offboarded") || healthRank(a) - healthRank(b) || bySoonestExpiry(a, b));
  return json(200, sites);
}

const healthRank = (site: TenantSummary) => (site.health ? HEALTH_ORDER[site.health.state] : -1);

function progressOf(customStatus: unknown): StepProgress | null {
  return customStatus && typeof customStatus === "object" && "step" in customStatus ? (customStatus as StepProgress) : null;
}

/**
 * A rotation keeps the lifetime of the password it replaces, so a secret that lives no longer than
 * the rotation window (ROTATE_DAYS_BEFORE_EXPIRY) is due again at every sweep: say so.
 */
function shortLifetimeWarning(properties: { createdOn?: Date; expiresOn?: Date } | undefined, rotateDaysBeforeExpiry: number): string[] {
  if (!properties?.createdOn || !properties.expiresOn) return [];
  const lifetimeDays = Math.round((properties.expiresOn.getTime() - properties.createdOn.getTime()) / DAY_MS);
  if (lifetimeDays > rotateDaysBeforeExpiry) return [];
  return [
    `The client secret lives ${lifetimeDays} days, no longer than the rotation window of ${rotateDaysBeforeExpiry} days (ROTATE_DAYS_BEFORE_EXPIRY): ` +
      `every sweep will rotate it. Onboard the site again with a larger secretLifetimeDays.`,
  ];
}

df.app.client.http("tenantsCreate", {
  ...httpTriggerFor("onboardTenant"),
  handler: answeringSettingsErrors((request, client, context) => createTenant(request, client, context)),
});

df.app.client.http("tenantsGet", {
  ...httpTriggerFor("getTenant"),
  handler: answeringSettingsErrors((request, client, context) => getTenant(request, client, context)),
});

app.http("tenantsList", {
  ...httpTriggerFor("listTenants"),
  handler: answeringSettingsErrors((request, context) => listTenants(request, context)),
});
