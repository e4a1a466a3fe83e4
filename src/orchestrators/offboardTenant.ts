import * as df from "durable-functions";
import type { OrchestrationContext, OrchestrationHandler } from "durable-functions";
import { z } from "zod";
import { UNLINK_CREATIO, type UnlinkCreatioResult } from "../activities/unlinkCreatio";
import { REMOVE_EWS_ACCESS, type RemoveEwsAccessResult } from "../activities/removeEwsAccess";
import { DELETE_APPLICATION, type DeleteApplicationResult } from "../activities/deleteApplication";
import { DELETE_SITE_SECRET, type DeleteSiteSecretResult } from "../activities/deleteSiteSecret";
import { EVENTS, logEvent } from "../observability";
import { CREATIO_RETRY, EXCHANGE_RETRY, GRAPH_RETRY, recordSiteStateQuietly, StepError, stepRunner } from "./steps";

/**
 * Offboarding a site (DELETE /api/tenants/{host}; docs/architecture.md, "Offboarding"): the
 * onboarding undone, outside in, so Creatio stops using the app before the app goes:
 *
 *   1. unlinkCreatio      Creatio's mail server unlinked, our OAuth application row deleted (only if it still holds our client id)
 *   2. removeEwsAccess    the app id leaves the tenant's EwsAllowedAppIDs (EWS_ACCESS=manage only)
 *   3. deleteApplication  the app registration deleted (restorable in Entra for 30 days; its service principal and grants go with it)
 *   4. deleteSiteSecret   the site marked offboarded in its tags, then its secret soft-deleted (recoverable for the vault's retention)
 *
 * Every step is idempotent, so a failed run is resumed by another DELETE. A failure is recorded in
 * the site's tags (lastRun kind offboard), which keeps the sweep away from the site until it is
 * offboarded or onboarded again. Deterministic: what the site's tags said comes in the input (the
 * starter read it); no secret value passes through here.
 */
export const OFFBOARD_TENANT = "offboardTenant";

export const offboardTenantInput = z.object({
  host: z.string().min(1),
  /** From the site's tags; absent for a site whose onboarding never stored a secret. */
  appId: z.string().min(1).optional(),
  creatioCredentialSecretName: z.string().min(1).optional(),
  mailServerId: z.string().min(1).optional(),
  /** The site's Entra tenant when not the home tenant: the app and the EWS allow-list entry are removed there. */
  tenantId: z.string().min(1).optional(),
});
export type OffboardTenantInput = z.input<typeof offboardTenantInput>;

export interface OffboardTenantOutput {
  host: string;
  outcome: "offboarded";
  offboardedAt: string | null;
  creatio: UnlinkCreatioResult;
  exchange: RemoveEwsAccessResult;
  application: DeleteApplicationResult;
  keyVault: DeleteSiteSecretResult;
}

const TOTAL_STEPS = 4;

export const offboardTenant: OrchestrationHandler = function* (context: OrchestrationContext) {
  const input = offboardTenantInput.parse(context.df.getInput());
  const steps = stepRunner(context, {
    site: input.host,
    totalSteps: TOTAL_STEPS,
    event: EVENTS.offboardingStep,
    nextAction: `Fix the cause, then DELETE /api/tenants/${input.host} again with {"confirm":"${input.host}"}: it resumes where this run stopped.`,
  });
  const { instanceId } = steps;
  const inTenant = input.tenantId ? { tenantId: input.tenantId } : {};
  try {
    const creatio: UnlinkCreatioResult = yield* steps.run(UNLINK_CREATIO, CREATIO_RETRY, {
      host: input.host,
      ...(input.appId ? { appId: input.appId } : {}),
      ...(input.creatioCredentialSecretName ? { creatioCredentialSecretName: input.creatioCredentialSecretName } : {}),
      ...(input.mailServerId ? { mailServerId: input.mailServerId } : {}),
    });
    const exchange: RemoveEwsAccessResult = yield* steps.run(REMOVE_EWS_ACCESS, EXCHANGE_RETRY, { host: input.host, ...(input.appId ? { appId: input.appId } : {}), ...inTenant });
    const application: DeleteApplicationResult = yield* steps.run(DELETE_APPLICATION, GRAPH_RETRY, { host: input.host, ...(input.appId ? { appId: input.appId } : {}), ...inTenant });
    const keyVault: DeleteSiteSecretResult = yield* steps.run(DELETE_SITE_SECRET, GRAPH_RETRY, { host: input.host, instanceId });

    steps.finish("done");
    logEvent(context, EVENTS.offboardingFinished, {
      site: input.host,
      instanceId,
      outcome: "succeeded",
      appId: input.appId ?? null,
      creatioActions: creatio.actions,
      creatioLeftLinkedTo: creatio.linkedToOtherClientId,
      ewsActions: exchange.actions,
      application: application.outcome,
      secret: keyVault.outcome,
    });
    const output: OffboardTenantOutput = {
      host: input.host,
      outcome: "offboarded",
      offboardedAt: keyVault.offboardedAt ?? context.df.currentUtcDateTime.toISOString(),
      creatio,
      exchange,
      application,
      keyVault,
    };
    return output;
  } catch (error) {
    if (!(error instanceof StepError)) throw error;
    // Recorded while the secret still exists (the Key Vault step is last): the sweep leaves the site alone.
    yield* recordSiteStateQuietly(context, EVENTS.offboardingStep, { host: input.host, lastRun: { kind: "offboard", outcome: "failed", step: error.step, instanceId } });
    steps.finish("failed", { error: error.message });
    logEvent(context, EVENTS.offboardingFinished, { site: input.host, instanceId, step: error.step, outcome: "failed", error: error.message });
    throw error;
  }
};

df.app.orchestration(OFFBOARD_TENANT, offboardTenant);
