import * as df from "durable-functions";
import type { OrchestrationContext, OrchestrationHandler } from "durable-functions";
import { z } from "zod";
import { CHECK_CREATIO_SITE, type CheckCreatioSiteResult } from "../activities/checkCreatioSite";
import { ENSURE_APPLICATION, type EnsureApplicationResult } from "../activities/ensureApplication";
import { ENSURE_SERVICE_PRINCIPAL, type EnsureServicePrincipalResult } from "../activities/ensureServicePrincipal";
import { GRANT_ADMIN_CONSENT, type GrantAdminConsentResult } from "../activities/grantAdminConsent";
import { ALLOW_EWS_ACCESS, type AllowEwsAccessResult } from "../activities/allowEwsAccess";
import { ISSUE_CLIENT_SECRET, type SecretReference } from "../activities/issueClientSecret";
import { CONFIGURE_CREATIO, type ConfigureCreatioResult } from "../activities/configureCreatio";
import { ALLOW_USER_CONSENT, type AllowUserConsentResult } from "../activities/allowUserConsent";
import { redirectUriFor } from "../domain/site";
import { CREATIO_EWS_PROFILE, permissionProfileSchema, profileUsesEws } from "../domain/permissions";
import { CHECK_TENANT_ACCESS, USER_CONSENT_ROLE, type CheckTenantAccessResult } from "../activities/checkTenantAccess";
import { EVENTS, logEvent } from "../observability";
import { AWAITING_ADMIN_CONSENT, awaitAdminConsent } from "./adminConsent";
import { CREATIO_RETRY, EXCHANGE_RETRY, GRAPH_RETRY, recordSiteStateQuietly, StepError, stepRunner } from "./steps";

/**
 * The manual "Office 365 OAuth for Creatio" procedure as one orchestration, step by step
 * (docs/architecture.md, "The procedure, step by step"). Deterministic ("Orchestrators are
 * deterministic"): no clock, randomness, I/O or settings here. Every activity is idempotent, so a
 * repeated POST resumes where the site stands. No secret value passes through here ("The secret
 * never enters Durable state"): issueClientSecret returns a reference.
 */
export const ONBOARD_TENANT = "onboardTenant";

export const onboardTenantInput = z.object({
  host: z.string().min(1),
  creatioCredentialSecretName: z.string().min(1),
  /** The credential's Key Vault version POST /api/tenants checked: later steps read that version (a reference, never the value). */
  creatioCredentialVersion: z.string().min(1).optional(),
  /** The app id the site's tags named when POST /api/tenants read them (null: none); absent in inputs from before. */
  knownAppId: z.string().min(1).nullable().optional(),
  displayName: z.string().min(1),
  secretLifetimeDays: z.number().int().min(1).max(730),
  mailServerId: z.string().min(1),
  allowUserConsent: z.boolean(),
  takeOver: z.boolean().default(false),
  /** allowEwsAccess may set the tenant's EwsEnabled to $true (EWS_ACCESS=manage only). */
  enableEwsForTenant: z.boolean().default(false),
  /**
   * What the app asks for (src/domain/permissions.ts), resolved by POST /api/tenants from its name
   * and PERMISSION_PROFILES, so no setting is read here; an input without it (a run started before
   * profiles) is creatio-ews.
   */
  profile: permissionProfileSchema.default(CREATIO_EWS_PROFILE),
  /** The profile the site's tags name (absent: never onboarded, or a profile no longer defined). */
  previousProfile: permissionProfileSchema.optional(),
  /**
   * The site's Entra tenant id when it is not the app's home tenant (src/domain/tenant.ts), resolved
   * by POST /api/tenants from `entraTenantId`; absent: the home tenant, with the app's own identity.
   */
  tenantId: z.string().min(1).optional(),
  /** ADMIN_CONSENT_WAIT_HOURS, passed in so no setting is read here. */
  adminConsentWaitHours: z.number().positive().default(168),
});
export type OnboardTenantInput = z.input<typeof onboardTenantInput>;

export interface OnboardTenantOutput {
  host: string;
  /** The site's Entra tenant when not the home tenant; null: the home tenant. */
  tenantId: string | null;
  appId: string;
  applicationObjectId: string;
  servicePrincipalId: string;
  redirectUri: string;
  permissionProfile: string;
  grantedScopes: string[];
  secret: Omit<SecretReference, "removedLeftovers">;
  creatio: {
    oauthApplicationId: string;
    mailServerId: string;
    syncedAt: string | null;
    actions: string[];
    tookOver: boolean;
    /** Mailboxes whose stored password linking the OAuth application cleared: their users sign in again. */
    passwordMailboxesCleared: number | null;
  };
  userConsent: AllowUserConsentResult | null;
  /** Exchange Online EWS readiness of the app (docs/architecture.md, "Exchange Online"). */
  mail: { ews: AllowEwsAccessResult["ews"]; checkedAt: string; reason: string | null; actions: string[] };
}


export const onboardTenant: OrchestrationHandler = function* (context: OrchestrationContext) {
  const input = onboardTenantInput.parse(context.df.getInput());
  // A site of another tenant has two steps more: the provisioner's access there, and the consent wait.
  const tenantSteps = input.tenantId ? 2 : 0;
  const steps = stepRunner(context, {
    site: input.host,
    totalSteps: (input.allowUserConsent ? 8 : 7) + tenantSteps,
    event: EVENTS.onboardingStep,
    nextAction: "Fix the cause, then POST /api/tenants again: it resumes where this run stopped.",
  });
  const { instanceId, runId } = steps;
  // Every Graph and Exchange Online step runs in the site's tenant (docs/architecture.md, "Serving several tenants").
  const inTenant = input.tenantId ? { tenantId: input.tenantId } : {};

  let mail: AllowEwsAccessResult | undefined;
  // The readiness goes into the site's tags with the run's outcome (the secret may not exist before).
  const readiness = () => (mail ? { mailReadiness: { ews: mail.ews, checkedAt: mail.checkedAt, ...(mail.reason ? { reason: mail.reason.slice(0, 300) } : {}) } } : {});
  try {
    // Another tenant: before anything there, the provisioner must be let in by an administrator of
    // that tenant (admin consent). Nothing is created anywhere until then.
    if (input.tenantId) {
      const access: CheckTenantAccessResult = yield* steps.run(CHECK_TENANT_ACCESS, GRAPH_RETRY, {
        tenantId: input.tenantId,
        instanceId,
        ...(input.allowUserConsent ? { extraRoles: [USER_CONSENT_ROLE] } : {}),
      });
      if (access.access === "consentRequired") yield* awaitAdminConsent(context, steps, input.host, access, input.adminConsentWaitHours, input.allowUserConsent ? [USER_CONSENT_ROLE] : []);
      else steps.skip(AWAITING_ADMIN_CONSENT, { reason: "consented before" });
    }

    // Before anything is created: the site answers, the credential logs in and may change mail
    // servers, the mail server exists and is not linked to another application.
    const preflight: CheckCreatioSiteResult = yield* steps.run(CHECK_CREATIO_SITE, CREATIO_RETRY, {
      host: input.host,
      creatioCredentialSecretName: input.creatioCredentialSecretName,
      ...(input.creatioCredentialVersion ? { creatioCredentialVersion: input.creatioCredentialVersion } : {}),
      ...(input.knownAppId !== undefined ? { knownAppId: input.knownAppId } : {}),
      mailServerId: input.mailServerId,
      takeOver: input.takeOver,
    });

    // Manual steps 2-5: app registration, redirect URI, delegated permissions.
    const app: EnsureApplicationResult = yield* steps.run(ENSURE_APPLICATION, GRAPH_RETRY, { ...inTenant,
      host: input.host,
      displayName: input.displayName,
      profile: input.profile,
      ...(input.previousProfile ? { previousProfile: input.previousProfile } : {}),
    });

    // Manual step 6, first half: the app's service principal in this tenant.
    const sp: EnsureServicePrincipalResult = yield* steps.run(ENSURE_SERVICE_PRINCIPAL, GRAPH_RETRY, { ...inTenant, appId: app.appId, displayName: input.displayName, appCreated: app.created });

    // Manual step 6: admin consent for every user.
    const consent: GrantAdminConsentResult = yield* steps.run(GRANT_ADMIN_CONSENT, GRAPH_RETRY, { ...inTenant,
      servicePrincipalId: sp.servicePrincipalId,
      servicePrincipalCreated: sp.created,
      grants: app.resources.map((r) => ({ resourceName: r.name, resourceServicePrincipalId: r.servicePrincipalId, scopes: r.scopes.map((s) => s.value) })),
      // The previous profile's scopes the profile no longer asks for leave the grants too.
      narrow: (app.retired ?? []).map((r) => ({ resourceName: r.name, resourceServicePrincipalId: r.servicePrincipalId, scopes: r.scopes.map((s) => s.value) })),
    });
    const grantedScopes = [...new Set(consent.grants.flatMap((g) => g.scopes))];

    // Exchange Online lets the app use EWS, before Creatio is told about it. "Not mail-ready" is a
    // result the status reports with the fix, not a failed onboarding.
    const ews: AllowEwsAccessResult = yield* steps.run(ALLOW_EWS_ACCESS, EXCHANGE_RETRY, { ...inTenant,
      host: input.host,
      appId: app.appId,
      enableEwsForTenant: input.enableEwsForTenant,
      // A profile without Exchange Online's EWS.AccessAsUser.All does not need the allow-list: notUsed.
      usesEws: profileUsesEws(input.profile),
    });
    mail = ews;

    // Manual steps 7-8: client secret, straight into Key Vault.
    const secret: SecretReference = yield* steps.run(ISSUE_CLIENT_SECRET, GRAPH_RETRY, { ...inTenant,
      host: input.host,
      instanceId,
      runId,
      purpose: "onboard",
      appId: app.appId,
      appObjectId: app.appObjectId,
      servicePrincipalId: sp.servicePrincipalId,
      secretLifetimeDays: input.secretLifetimeDays,
      creatioCredentialSecretName: input.creatioCredentialSecretName,
      mailServerId: input.mailServerId,
      scopes: grantedScopes,
      permissionProfile: input.profile.name,
    });

    // Manual step 10: client id and secret into Creatio's Office 365 mail server settings.
    const creatio: ConfigureCreatioResult = yield* steps.run(CONFIGURE_CREATIO, CREATIO_RETRY, {
      host: input.host,
      secretName: secret.secretName,
      secretVersion: secret.version,
      creatioCredentialSecretName: input.creatioCredentialSecretName,
      ...(input.creatioCredentialVersion ? { creatioCredentialVersion: input.creatioCredentialVersion } : {}),
      mailServerId: input.mailServerId,
      appId: app.appId,
      takeOver: preflight.takingOver,
      // The last step unless user consent follows: it records the outcome with its own tag update.
      ...(input.allowUserConsent ? {} : { recordOnSuccess: { lastRun: { kind: "onboard" as const, outcome: "succeeded" as const, instanceId }, ...readiness() } }),
    });

    // Manual step 9, opt-in only: admin consent already covers every user.
    let userConsent: AllowUserConsentResult | null = null;
    if (input.allowUserConsent) userConsent = yield* steps.run(ALLOW_USER_CONSENT, GRAPH_RETRY, inTenant);

    if (!creatio.recordedOutcome) {
      yield* recordSiteStateQuietly(context, EVENTS.onboardingStep, { host: input.host, lastRun: { kind: "onboard", outcome: "succeeded", instanceId }, ...readiness() });
    }
    steps.finish("done");
    logEvent(context, EVENTS.onboardingFinished, { site: input.host, instanceId, outcome: "succeeded", appId: app.appId, keyId: secret.keyId, ews: ews.ews });
    const { removedLeftovers: _removed, ...secretReference } = secret;
    const output: OnboardTenantOutput = {
      host: input.host,
      tenantId: input.tenantId ?? null,
      appId: app.appId,
      applicationObjectId: app.appObjectId,
      servicePrincipalId: sp.servicePrincipalId,
      redirectUri: redirectUriFor(input.host, input.profile),
      permissionProfile: input.profile.name,
      grantedScopes,
      secret: secretReference,
      creatio: {
        oauthApplicationId: creatio.oauthApplicationId,
        mailServerId: creatio.mailServerId,
        syncedAt: creatio.syncedAt,
        actions: creatio.actions,
        tookOver: preflight.takingOver,
        passwordMailboxesCleared: creatio.actions.includes("linked-mail-server") ? preflight.passwordMailboxes : 0,
      },
      userConsent,
      mail: { ews: ews.ews, checkedAt: ews.checkedAt, reason: ews.reason ?? null, actions: ews.actions },
    };
    return output;
  } catch (error) {
    if (!(error instanceof StepError)) throw error;
    // The failure stays visible in the list and the sweep until a later run succeeds.
    yield* recordSiteStateQuietly(context, EVENTS.onboardingStep, { host: input.host, lastRun: { kind: "onboard", outcome: "failed", step: error.step, instanceId }, ...readiness() });
    steps.finish("failed", { error: error.message });
    logEvent(context, EVENTS.onboardingFinished, { site: input.host, instanceId, step: error.step, outcome: "failed", error: error.message });
    throw error;
  }
};

df.app.orchestration(ONBOARD_TENANT, onboardTenant);
