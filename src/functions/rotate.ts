import type { HttpRequest, HttpResponseInit, InvocationContext } from "@azure/functions";
import * as df from "durable-functions";
import type { DurableClient } from "durable-functions";
import { httpTriggerFor } from "../api/openapi";
import { rotateRequestSchema, type ErrorResponse } from "../api/schemas";
import { currentSecretProperties, getSecretClient, type SecretStore } from "../clients/keyVault";
import { secretNameFor } from "../domain/site";
import { ourSecret } from "../domain/managedSecret";
import { offboardingRequested } from "../domain/offboarding";
import { settings } from "../settings";
import { startRotation } from "./startRotation";
import { answeringSettingsErrors, json, keyVaultUnavailable, siteNotManaged } from "./responses";
import { readSiteRequest } from "./requestBody";
import { conflictMessage } from "./startExclusive";

/**
 * POST /api/tenants/{host}/rotate (docs/architecture.md, "Layers"; README "Onboard the first Creatio site"): rotate now, e.g. after a suspected leak.
 * Optional JSON body `{gracePeriodHours}` (0 retires the old secret as soon as Creatio has the new
 * one). 202 + Durable check-status body; 404 when the site is not managed here (an offboarded
 * site's secret is deleted); 409 when a run of the site is already active or its offboarding did
 * not finish. Never returns or logs a secret value.
 */
export const TENANTS_ROTATE = "tenantsRotate";

export interface RotateDeps {
  secrets: SecretStore;
  /** OLD_SECRET_GRACE_HOURS, read here so the orchestrator gets it as input (docs/architecture.md, "Orchestrators are deterministic"). */
  defaultGracePeriodHours: () => number;
}

const defaultDeps = (): RotateDeps => ({ secrets: getSecretClient(), defaultGracePeriodHours: () => settings().OLD_SECRET_GRACE_HOURS });

export async function rotateTenant(request: HttpRequest, client: DurableClient, context: InvocationContext, deps: RotateDeps = defaultDeps()): Promise<HttpResponseInit> {
  // The body is optional: none (or an empty one) means the defaults.
  const read = await readSiteRequest(request, rotateRequestSchema);
  if (!read.ok) return read.response;
  const { host } = read;

  // Managed here: our secret, with a site's tags (properties only; the value is dropped).
  const secretName = secretNameFor(host);
  let tenantId: string | undefined;
  try {
    const properties = await currentSecretProperties(deps.secrets, secretName);
    if (!properties) return siteNotManaged(host);
    const tags = ourSecret(properties)?.tags;
    if (!tags) {
      return json(404, { error: `Key Vault secret ${secretName} exists but is not a managed site's secret` } satisfies ErrorResponse);
    }
    tenantId = tags.tenantId;
    // An offboarding was asked for and did not finish (docs/architecture.md, "Offboarding"): finish it or onboard again, not rotate.
    if (offboardingRequested(tags)) {
      return json(409, {
        error: `${host} is being offboarded (its last offboarding did not finish): DELETE /api/tenants/${host} again to finish it, or POST /api/tenants to onboard it again`,
      } satisfies ErrorResponse);
    }
  } catch (error) {
    return keyVaultUnavailable(context, secretName, error);
  }

  const gracePeriodHours = read.body.gracePeriodHours ?? deps.defaultGracePeriodHours();
  const result = await startRotation(client, { host, gracePeriodHours, trigger: "manual", ...(tenantId ? { tenantId } : {}) });
  if (!result.started) {
    return json(409, { error: conflictMessage(host, result), instanceId: result.blockedBy } satisfies ErrorResponse);
  }
  context.log(`Started rotateSecret ${result.instanceId} (on demand, grace period ${gracePeriodHours} h)`);
  return client.createCheckStatusResponse(request, result.instanceId);
}

df.app.client.http(TENANTS_ROTATE, {
  ...httpTriggerFor("rotateTenantSecret"),
  handler: answeringSettingsErrors((request, client, context) => rotateTenant(request, client, context)),
});
