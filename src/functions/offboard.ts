import type { HttpRequest, HttpResponseInit, InvocationContext } from "@azure/functions";
import * as df from "durable-functions";
import type { DurableClient } from "durable-functions";
import { httpTriggerFor } from "../api/openapi";
import { offboardRequestSchema, type ErrorResponse, type OffboardedResponse } from "../api/schemas";
import { currentSecretProperties, getSecretClient, type SecretStore } from "../clients/keyVault";
import { ourSecret } from "../domain/managedSecret";
import { restoreAdvice } from "../domain/offboarding";
import { offboardingInstanceIdFor, onboardingInstanceIdFor, secretNameFor } from "../domain/site";
import { OFFBOARD_TENANT, type OffboardTenantInput } from "../orchestrators/offboardTenant";
import { answeringSettingsErrors, badRequest, json, keyVaultUnavailable, siteNotManaged } from "./responses";
import { readSiteRequest } from "./requestBody";
import { conflictMessage, instanceStatus, startExclusive, tenantOfRun } from "./startExclusive";
import { offboardedWithoutSecretAt, readDeletedSiteSecret } from "./tenants";

/**
 * DELETE /api/tenants/{host} with `{"confirm":"<host>"}` (docs/architecture.md, "Offboarding";
 * README "Offboarding"): starts offboardTenant under `offboard-<host>`, one orchestration per site
 * (409 while an onboarding, rotation or offboarding of the site runs). 202 + Durable's check-status
 * body. A site already offboarded answers 200 with what was done and how to restore it: a no-op. A
 * failed or interrupted offboarding is resumed by the same request. 404 for a site never managed
 * here. What the site's tags say (app id, Creatio credential name, mail server) goes into the input,
 * so the orchestrator reads nothing itself; no secret value is read into it or answered.
 */
export const TENANTS_OFFBOARD = "tenantsOffboard";

export interface OffboardDeps {
  secrets: SecretStore;
}

const defaultDeps = (): OffboardDeps => ({ secrets: getSecretClient() });

export async function offboardTenantRequest(request: HttpRequest, client: DurableClient, context: InvocationContext, deps: OffboardDeps = defaultDeps()): Promise<HttpResponseInit> {
  const read = await readSiteRequest(request, offboardRequestSchema, (site) => ({
    confirm: `confirm is required: send {"confirm":"${site}"} to offboard ${site}, which disconnects every user's Office 365 mailbox in that Creatio`,
  }));
  if (!read.ok) return read.response;
  const { host } = read;
  if (read.body.confirm.trim().toLowerCase() !== host) {
    return badRequest("Invalid request", [{ path: "confirm", message: `confirm must be the site's host ${host}` }]);
  }

  const secretName = secretNameFor(host);
  let input: OffboardTenantInput | undefined;
  let properties;
  try {
    properties = await currentSecretProperties(deps.secrets, secretName);
  } catch (error) {
    return keyVaultUnavailable(context, secretName, error);
  }
  if (properties) {
    const ours = ourSecret({ ...properties, name: secretName });
    if (!ours?.tags || ours.problem) {
      return json(404, { error: `Key Vault secret ${secretName} exists but is not a managed site's secret` } satisfies ErrorResponse);
    }
    input = { host, appId: ours.tags.appId, creatioCredentialSecretName: ours.tags.creatioCredential, mailServerId: ours.tags.mailServerId, ...(ours.tags.tenantId ? { tenantId: ours.tags.tenantId } : {}) };
  }

  if (!input) {
    // No live secret: already offboarded (the deleted secret carries the mark), or a site whose
    // onboarding never stored one (only its app may exist: the offboarding deletes it by uniqueName).
    try {
      const deleted = await readDeletedSiteSecret(deps.secrets, secretName);
      if (deleted) {
        const restore = restoreAdvice({ host, secretName, vaultName: deleted.vaultName, appObjectId: deleted.appObjectId, offboardedAt: deleted.offboardedAt, secretPurgeOn: deleted.scheduledPurgeDate });
        return alreadyOffboarded(host, deleted.offboardedAt, restore);
      }
    } catch (error) {
      return keyVaultUnavailable(context, `deleted secret ${secretName}`, error);
    }
    const [onboarding, offboarding] = await Promise.all([instanceStatus(client, onboardingInstanceIdFor(host), { showInput: true }), instanceStatus(client, offboardingInstanceIdFor(host))]);
    const doneAt = offboardedWithoutSecretAt(onboarding, offboarding);
    if (doneAt) return alreadyOffboarded(host, doneAt, `To manage it again: POST /api/tenants with its creatioUrl (https://${host}) and creatioCredentialSecretName.`);
    if (!onboarding && !offboarding) return siteNotManaged(host);
    // Its app, if any, lives in the tenant the onboarding was started for.
    const tenantId = tenantOfRun(onboarding);
    input = { host, ...(tenantId ? { tenantId } : {}) };
  }

  const result = await startExclusive(client, "offboard", OFFBOARD_TENANT, host, input);
  if (!result.started) {
    return json(409, { error: conflictMessage(host, result), instanceId: result.blockedBy } satisfies ErrorResponse);
  }
  context.log(`Started ${OFFBOARD_TENANT} ${result.instanceId}`);
  return client.createCheckStatusResponse(request, result.instanceId);
}

function alreadyOffboarded(host: string, offboardedAt: string, restore: string): HttpResponseInit {
  const body: OffboardedResponse = {
    host,
    offboarded: true,
    offboardedAt,
    message: `${host} was already offboarded on ${offboardedAt}; nothing was done. ${restore}`,
  };
  return json(200, body);
}

df.app.client.http(TENANTS_OFFBOARD, {
  ...httpTriggerFor("offboardTenant"),
  handler: answeringSettingsErrors((request, client, context) => offboardTenantRequest(request, client, context)),
});
