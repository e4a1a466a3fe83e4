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
import { parseCreatioCredential } from "../clients/creatio";
import { getSecretClient, isSecretNotFound, type SecretStore } from "../clients/keyVault";
import { ewsRetirementNotice } from "../domain/ews";
import { onboardingInstanceIdFor, parseCreatioUrl, parseSiteHost, redirectUriFor, secretNameFor, hostFromSecretName } from "../domain/site";
import { SECRET_CONTENT_TYPE, decodeSiteTags, type SiteTags } from "../domain/tags";
import { bySoonestExpiry, DAY_MS, lastRotationFromTags, nextRotationDueAt } from "../domain/rotationPlan";
import type { RotationProgress } from "../orchestrators/rotateSecret";
import { rotationStatus } from "./startRotation";
import { answeringSettingsErrors, badRequest, decodeHostParam, json, keyVaultUnavailable } from "./responses";
import { readJsonBody } from "./requestBody";
import { conflictMessage, instanceStatus, startExclusive } from "./startExclusive";
import { settings } from "../settings";
import { ONBOARD_TENANT, type OnboardTenantInput, type OnboardingProgress } from "../orchestrators/onboardTenant";

/**
 * The tenants HTTP API (DESIGN section 3). Nothing here returns or logs a secret value: Key Vault
 * is read for properties and tags; the Creatio credential is only checked to exist and to have
 * the documented shape.
 */

export interface TenantsDeps {
  secrets: SecretStore;
  now: () => Date;
  /** ROTATE_DAYS_BEFORE_EXPIRY, for the next rotation's due date; the setting's default (30) when omitted. */
  rotateDaysBeforeExpiry?: number;
  /** CREATIO_ALLOW_LOOPBACK: a creatioUrl may be a loopback address; false when omitted. */
  allowLoopback?: boolean;
}

const defaultDeps = (): TenantsDeps => {
  const s = settings();
  return { secrets: getSecretClient(), now: () => new Date(), rotateDaysBeforeExpiry: s.ROTATE_DAYS_BEFORE_EXPIRY, allowLoopback: s.CREATIO_ALLOW_LOOPBACK };
};

/** Rotation facts of a site: tags and the current version's expiry only (issue 4). */
export function rotationOf(tags: SiteTags | undefined, expiresOn: Date | undefined, now: Date, deps: TenantsDeps): RotationStatus | null {
  if (!tags) return null;
  const last = lastRotationFromTags(tags);
  return {
    state: tags.rotationState,
    lastRotatedAt: last?.at ?? null,
    lastOutcome: last?.outcome ?? null,
    currentKeyId: tags.keyId,
    previousKeyId: tags.previousKeyId ?? null,
    expiresOn: iso(expiresOn),
    daysLeft: daysLeft(expiresOn, now),
    nextRotationDueAt: iso(nextRotationDueAt(expiresOn, deps.rotateDaysBeforeExpiry ?? 30)),
  };
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

  // Checked here so a typo answers 400 now instead of failing step 5 minutes later.
  try {
    const credential = await deps.secrets.getSecret(request_.creatioCredentialSecretName);
    parseCreatioCredential(request_.creatioCredentialSecretName, credential.value);
  } catch (error) {
    if (isSecretNotFound(error)) {
      return badRequest("Invalid request", [
        { path: "creatioCredentialSecretName", message: `creatioCredentialSecretName: Key Vault has no secret named ${request_.creatioCredentialSecretName}` },
      ]);
    }
    if ((error as Error)?.name === "CreatioCredentialError") {
      return badRequest("Invalid request", [{ path: "creatioCredentialSecretName", message: `creatioCredentialSecretName: ${(error as Error).message}` }]);
    }
    return keyVaultUnavailable(context, request_.creatioCredentialSecretName, error);
  }

  const input: OnboardTenantInput = {
    host: site.site.host,
    creatioCredentialSecretName: request_.creatioCredentialSecretName,
    displayName: request_.displayName,
    secretLifetimeDays: request_.secretLifetimeDays,
    mailServerId: request_.mailServerId,
    allowUserConsent: request_.allowUserConsent,
  };
  const result = await startExclusive(client, "onboard", ONBOARD_TENANT, site.site.host, input);
  if (!result.started) {
    return json(409, { error: conflictMessage(site.site.host, result), instanceId: result.blockedBy } satisfies ErrorResponse);
  }
  const instanceId = result.instanceId;
  context.log(`Started ${ONBOARD_TENANT} ${instanceId}`);
  return client.createCheckStatusResponse(request, instanceId);
}

function daysLeft(expiresOn: Date | undefined, now: Date): number | null {
  return expiresOn ? Math.floor((expiresOn.getTime() - now.getTime()) / 86_400_000) : null;
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
    | { appId?: string; applicationObjectId?: string; servicePrincipalId?: string; grantedScopes?: string[] }
    | undefined;
  const now = deps.now();
  const body: TenantStatus = {
    host,
    creatioUrl: `https://${host}`,
    redirectUri: redirectUriFor(host),
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
    },
    rotationState: tags?.rotationState ?? null,
    rotation: rotationOf(tags, properties?.expiresOn, now, deps),
    rotationRun: rotationRun
      ? {
          instanceId: rotationRun.instanceId,
          runtimeStatus: String(rotationRun.runtimeStatus),
          currentStep: (rotationRun.customStatus as RotationProgress | null | undefined)?.step ?? null,
          graceEndsAt: (rotationRun.customStatus as RotationProgress | null | undefined)?.graceEndsAt ?? null,
          error: rotationRun.runtimeStatus === "Failed" ? String(rotationRun.output ?? "failed") : null,
          createdTime: iso(rotationRun.createdTime),
          lastUpdatedTime: iso(rotationRun.lastUpdatedTime),
        }
      : null,
    onboarding: status
      ? {
          instanceId,
          runtimeStatus: String(status.runtimeStatus),
          currentStep: (status.customStatus as OnboardingProgress | null | undefined) ?? null,
          error: status.runtimeStatus === "Failed" ? String(status.output ?? "failed") : null,
          createdTime: iso(status.createdTime),
          lastUpdatedTime: iso(status.lastUpdatedTime),
        }
      : null,
    warnings: [ewsRetirementNotice(), ...shortLifetimeWarning(properties, deps.rotateDaysBeforeExpiry ?? 30)],
  };
  return json(200, body);
}

/** GET /api/tenants: every site whose secret carries our contentType; properties only, no values (DESIGN rule 5). */
export async function listTenants(_request: HttpRequest, context: InvocationContext, deps: TenantsDeps = defaultDeps()): Promise<HttpResponseInit> {
  const now = deps.now();
  const sites: TenantSummary[] = [];
  try {
    for await (const properties of deps.secrets.listPropertiesOfSecrets()) {
      if (properties.contentType !== SECRET_CONTENT_TYPE) continue;
      const decoded = decodeSiteTags(properties.tags);
      const host = decoded.ok ? decoded.tags.site : hostFromSecretName(properties.name);
      if (!host) continue;
      sites.push({
        host,
        secretName: properties.name,
        appId: decoded.ok ? decoded.tags.appId : null,
        keyId: decoded.ok ? decoded.tags.keyId : null,
        expiresOn: iso(properties.expiresOn),
        daysLeft: daysLeft(properties.expiresOn, now),
        creatioSyncedAt: decoded.ok ? (decoded.tags.creatioSyncedAt ?? null) : null,
        rotationState: decoded.ok ? decoded.tags.rotationState : null,
        rotation: rotationOf(decoded.ok ? decoded.tags : undefined, properties.expiresOn, now, deps),
      });
    }
  } catch (error) {
    return keyVaultUnavailable(context, "the list of secrets", error);
  }
  // Soonest expiry first (issue 4): the sites that need attention lead.
  sites.sort(bySoonestExpiry);
  return json(200, sites);
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
  route: "tenants",
  methods: ["POST"],
  authLevel: "function",
  handler: answeringSettingsErrors((request, client, context) => createTenant(request, client, context)),
});

df.app.client.http("tenantsGet", {
  route: "tenants/{host}",
  methods: ["GET"],
  authLevel: "function",
  handler: answeringSettingsErrors((request, client, context) => getTenant(request, client, context)),
});

app.http("tenantsList", {
  route: "tenants",
  methods: ["GET"],
  authLevel: "function",
  handler: answeringSettingsErrors((request, context) => listTenants(request, context)),
});
