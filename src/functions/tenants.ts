import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from "@azure/functions";
import * as df from "durable-functions";
import type { DurableClient } from "durable-functions";
import {
  onboardRequestSchema,
  toFieldErrors,
  type ErrorResponse,
  type RotationStatus,
  type TenantStatus,
  type TenantSummary,
} from "../api/schemas";
import { CreatioCredentialError, readSiteCredential } from "../clients/creatio";
import { allSettledOnKeyVault, getSecretClient, isSecretNotFound, type SecretStore } from "../clients/keyVault";
import { mailStatus } from "../domain/ews";
import { onboardingInstanceIdFor, parseCreatioUrl, parseSiteHost, redirectUriFor, secretNameFor } from "../domain/site";
import { ourSecret } from "../domain/managedSecret";
import { decodeSiteTags, type CreatioCheck, type SiteTags } from "../domain/tags";
import { DEFAULT_PERMISSION_PROFILE, findProfile, knownProfiles, type PermissionProfile } from "../domain/permissions";
import { bySoonestExpiry, DAY_MS, daysLeft, lastRotationFromTags, planSite, type SitePlan } from "../domain/rotationPlan";
import { HEALTH_ORDER, siteHealth, unmanagedHealth } from "../domain/health";
import { publicMessage } from "../domain/failure";
import type { StepProgress } from "../orchestrators/steps";
import { checkCreatioLink } from "./creatioLink";
import { rotationStatus } from "./startRotation";
import { answeringSettingsErrors, badRequest, decodeHostParam, json, keyVaultUnavailable } from "./responses";
import { readJsonBody } from "./requestBody";
import { conflictMessage, instanceStatus, startExclusive } from "./startExclusive";
import { settings } from "../settings";
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
    checkCreatio: (tags, now) => checkCreatioLink(secrets, tags, now),
  };
};

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
        { path: "creatioCredentialSecretName", message: `creatioCredentialSecretName: Key Vault has no secret named ${request_.creatioCredentialSecretName}` },
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
  if (siteRead.status === "fulfilled") {
    const decoded = decodeSiteTags(siteRead.value.properties.tags);
    if (decoded.ok) {
      knownAppId = decoded.tags.appId;
      const name = decoded.tags.permissionProfile ?? DEFAULT_PERMISSION_PROFILE;
      previousProfile = findProfile(name, deps.permissionProfiles);
      if (!previousProfile) context.warn(`${site.site.host} was onboarded with the permission profile ${name}, which is no longer defined: its scopes are not taken away.`);
    }
  } else if (!isSecretNotFound(siteRead.reason)) {
    return keyVaultUnavailable(context, secretName, siteRead.reason);
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
  };
  const result = await startExclusive(client, "onboard", ONBOARD_TENANT, site.site.host, input);
  if (!result.started) {
    return json(409, { error: conflictMessage(site.site.host, result), instanceId: result.blockedBy } satisfies ErrorResponse);
  }
  const instanceId = result.instanceId;
  context.log(`Started ${ONBOARD_TENANT} ${instanceId}`);
  return client.createCheckStatusResponse(request, instanceId);
}

function iso(date: Date | string | undefined | null): string | null {
  if (!date) return null;
  const d = typeof date === "string" ? new Date(date) : date;
  return Number.isNaN(d.getTime()) ? null : d.toISOString();
}

/** GET /api/tenants/{host}: Key Vault tags + Durable status of the site's onboarding. */
export async function getTenant(request: HttpRequest, client: DurableClient, context: InvocationContext, deps: TenantsDeps = defaultDeps()): Promise<HttpResponseInit> {
  const parsedHost = parseSiteHost(decodeHostParam(request.params.host ?? ""));
  if (!parsedHost.ok) return badRequest("Invalid host", [{ path: "host", message: `host ${parsedHost.problem}` }]);
  const { host } = parsedHost.site;
  const secretName = secretNameFor(host);

  let properties: { version?: string; createdOn?: Date; expiresOn?: Date; tags?: Record<string, string> } | undefined;
  try {
    // getSecret is the only single-secret read; the value is dropped here and never leaves.
    properties = (await deps.secrets.getSecret(secretName)).properties;
  } catch (error) {
    if (!isSecretNotFound(error)) return keyVaultUnavailable(context, secretName, error);
  }
  const instanceId = onboardingInstanceIdFor(host);
  const status = await instanceStatus(client, instanceId);
  const rotationRun = await rotationStatus(client, host);
  if (!properties && !status) return json(404, { error: `No Creatio site ${host} is managed here` } satisfies ErrorResponse);

  const decoded = properties ? decodeSiteTags(properties.tags) : undefined;
  const tags = decoded?.ok ? decoded.tags : undefined;
  const output = (status?.runtimeStatus === "Completed" ? status.output : undefined) as
    | { appId?: string; applicationObjectId?: string; servicePrincipalId?: string; grantedScopes?: string[]; permissionProfile?: string; creatio?: { passwordMailboxesCleared?: number | null } }
    | undefined;
  const passwordMailboxesCleared = output?.creatio?.passwordMailboxesCleared ?? null;
  const now = deps.now();
  const window = deps.rotateDaysBeforeExpiry ?? DEFAULT_ROTATE_DAYS;
  // What Creatio's mail uses now, read live: the tags only say what was written.
  const check = tags && deps.checkCreatio ? await deps.checkCreatio(tags, now) : null;
  const assessed = tags ? assess(host, secretName, tags, properties?.expiresOn, now, window, check) : undefined;
  const permissionProfile = tags ? (tags.permissionProfile ?? DEFAULT_PERMISSION_PROFILE) : (output?.permissionProfile ?? null);
  const body: TenantStatus = {
    host,
    creatioUrl: `https://${host}`,
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
    onboarding: status
      ? {
          instanceId,
          runtimeStatus: String(status.runtimeStatus),
          currentStep: progressOf(status.customStatus),
          error: status.runtimeStatus === "Failed" ? publicMessage(status.output ?? "failed", 600) : null,
          createdTime: iso(status.createdTime),
          lastUpdatedTime: iso(status.lastUpdatedTime),
        }
      : null,
    health:
      assessed?.health ??
      unmanagedHealth(
        host,
        status ? { runtimeStatus: String(status.runtimeStatus), step: progressOf(status.customStatus)?.step, error: status.runtimeStatus === "Failed" ? publicMessage(status.output ?? "failed", 600) : null } : null,
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

/** GET /api/tenants: every site whose secret carries our contentType; properties only, no values (docs/architecture.md, "Key Vault is the registry"). */
export async function listTenants(_request: HttpRequest, context: InvocationContext, deps: TenantsDeps = defaultDeps()): Promise<HttpResponseInit> {
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
      });
    }
  } catch (error) {
    return keyVaultUnavailable(context, "the list of secrets", error);
  }
  // Least healthy first, then the soonest stop: the sites that need attention lead.
  sites.sort((a, b) => healthRank(a) - healthRank(b) || bySoonestExpiry(a, b));
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
