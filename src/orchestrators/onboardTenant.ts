import * as df from "durable-functions";
import type { OrchestrationContext, OrchestrationHandler, RetryOptions, Task } from "durable-functions";
import { z } from "zod";
import { ENSURE_APPLICATION, type EnsureApplicationResult } from "../activities/ensureApplication";
import { ENSURE_SERVICE_PRINCIPAL, type EnsureServicePrincipalResult } from "../activities/ensureServicePrincipal";
import { GRANT_ADMIN_CONSENT, type GrantAdminConsentResult } from "../activities/grantAdminConsent";
import { ISSUE_CLIENT_SECRET, type SecretReference } from "../activities/issueClientSecret";
import { CONFIGURE_CREATIO, type ConfigureCreatioResult } from "../activities/configureCreatio";
import { ALLOW_USER_CONSENT, type AllowUserConsentResult } from "../activities/allowUserConsent";
import { redirectUriFor } from "../domain/site";
import { EVENTS, logEvent } from "../observability";
import { retryPolicy, upstreamMessage } from "./retries";

/**
 * The manual "Office 365 OAuth for Creatio" procedure as one orchestration. Deterministic (DESIGN
 * rule 3): no clock, randomness, I/O or settings here; time comes from currentUtcDateTime. Every
 * activity is idempotent (DESIGN rule 2), so a repeated POST resumes where the site stands. No
 * secret value passes through here (DESIGN rule 1): issueClientSecret returns a reference.
 */
export const ONBOARD_TENANT = "onboardTenant";

export const onboardTenantInput = z.object({
  host: z.string().min(1),
  creatioCredentialSecretName: z.string().min(1),
  displayName: z.string().min(1),
  secretLifetimeDays: z.number().int().min(1).max(730),
  mailServerId: z.string().min(1),
  allowUserConsent: z.boolean(),
});
export type OnboardTenantInput = z.infer<typeof onboardTenantInput>;

export interface OnboardingProgress {
  step: string;
  stepNumber: number;
  totalSteps: number;
}

export interface OnboardTenantOutput {
  host: string;
  appId: string;
  applicationObjectId: string;
  servicePrincipalId: string;
  redirectUri: string;
  grantedScopes: string[];
  secret: Omit<SecretReference, "removedLeftovers">;
  creatio: { oauthApplicationId: string; mailServerId: string; syncedAt: string | null; actions: string[] };
  userConsent: AllowUserConsentResult | null;
}

/** Graph steps: throttling and replication lag clear within a minute or so. */
const GRAPH_RETRY = retryPolicy(2_000, 5);
/** Creatio: a site that is down is reported soon rather than retried for long; a later POST resumes. */
const CREATIO_RETRY = retryPolicy(2_000, 3);

export class OnboardingStepError extends Error {
  override name = "OnboardingStepError";
}

export const onboardTenant: OrchestrationHandler = function* (context: OrchestrationContext) {
  const input = onboardTenantInput.parse(context.df.getInput());
  const instanceId = context.df.instanceId;
  // The run's start time: stable across replays, different for the next run of the same instance id.
  const runId = context.df.currentUtcDateTime.toISOString();
  const totalSteps = input.allowUserConsent ? 6 : 5;
  let stepNumber = 0;

  function* step<T>(name: string, options: RetryOptions, activityInput: unknown): Generator<Task, T, unknown> {
    stepNumber += 1;
    const progress: OnboardingProgress = { step: name, stepNumber, totalSteps };
    context.df.setCustomStatus(progress);
    const fields = { site: input.host, step: name, instanceId };
    logEvent(context, EVENTS.onboardingStep, { ...fields, outcome: "started", stepNumber, totalSteps });
    try {
      const result = (yield context.df.callActivityWithRetry(name, options, activityInput)) as T;
      logEvent(context, EVENTS.onboardingStep, { ...fields, outcome: "succeeded", stepNumber, totalSteps });
      return result;
    } catch (error) {
      const message = `Step ${stepNumber} of ${totalSteps} (${name}) failed: ${upstreamMessage(error)}`;
      logEvent(context, EVENTS.onboardingStep, { ...fields, outcome: "failed", error: message });
      logEvent(context, EVENTS.onboardingFinished, { ...fields, outcome: "failed", error: message });
      throw new OnboardingStepError(message);
    }
  }

  // Manual steps 2-5: app registration, redirect URI, delegated permissions.
  const app: EnsureApplicationResult = yield* step(ENSURE_APPLICATION, GRAPH_RETRY, { host: input.host, displayName: input.displayName });

  // Manual step 6, first half: the app's service principal in this tenant.
  const sp: EnsureServicePrincipalResult = yield* step(ENSURE_SERVICE_PRINCIPAL, GRAPH_RETRY, { appId: app.appId, displayName: input.displayName });

  // Manual step 6: admin consent for every user.
  const consent: GrantAdminConsentResult = yield* step(GRANT_ADMIN_CONSENT, GRAPH_RETRY, {
    servicePrincipalId: sp.servicePrincipalId,
    grants: app.resources.map((r) => ({ resourceName: r.name, resourceServicePrincipalId: r.servicePrincipalId, scopes: r.scopes.map((s) => s.value) })),
  });
  const grantedScopes = [...new Set(consent.grants.flatMap((g) => g.scopes))];

  // Manual steps 7-8: client secret, straight into Key Vault.
  const secret: SecretReference = yield* step(ISSUE_CLIENT_SECRET, GRAPH_RETRY, {
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
  });

  // Manual step 10: client id and secret into Creatio's Office 365 mail server settings.
  const creatio: ConfigureCreatioResult = yield* step(CONFIGURE_CREATIO, CREATIO_RETRY, {
    host: input.host,
    secretName: secret.secretName,
    secretVersion: secret.version,
    creatioCredentialSecretName: input.creatioCredentialSecretName,
    mailServerId: input.mailServerId,
    appId: app.appId,
  });

  // Manual step 9, opt-in only: admin consent already covers every user.
  let userConsent: AllowUserConsentResult | null = null;
  if (input.allowUserConsent) {
    userConsent = yield* step(ALLOW_USER_CONSENT, GRAPH_RETRY, {});
  }

  context.df.setCustomStatus({ step: "done", stepNumber: totalSteps, totalSteps } satisfies OnboardingProgress);
  logEvent(context, EVENTS.onboardingFinished, { site: input.host, instanceId, outcome: "succeeded", appId: app.appId, keyId: secret.keyId });
  const { removedLeftovers: _removed, ...secretReference } = secret;
  const output: OnboardTenantOutput = {
    host: input.host,
    appId: app.appId,
    applicationObjectId: app.appObjectId,
    servicePrincipalId: sp.servicePrincipalId,
    redirectUri: redirectUriFor(input.host),
    grantedScopes,
    secret: secretReference,
    creatio: { oauthApplicationId: creatio.oauthApplicationId, mailServerId: creatio.mailServerId, syncedAt: creatio.syncedAt, actions: creatio.actions },
    userConsent,
  };
  return output;
};

df.app.orchestration(ONBOARD_TENANT, onboardTenant);
