import type { EventGridEvent, InvocationContext } from "@azure/functions";
import * as df from "durable-functions";
import type { DurableClient } from "durable-functions";
import { getSecretClient, isSecretNotFound, type SecretStore } from "../clients/keyVault";
import { screenKeyVaultEvent, type GridEvent } from "../domain/keyVaultEvent";
import { ourSecret } from "../domain/managedSecret";
import { offboardingRequested } from "../domain/offboarding";
import { EVENTS, logEvent } from "../observability";
import { settings } from "../settings";
import { startRotation } from "./startRotation";
import { loggingSettingsErrors } from "./responses";

/**
 * Event Grid trigger for Key Vault's `SecretNearExpiry` / `SecretExpired` (infra wires this name,
 * infra/app/keyvault-events.bicep). Starts the same rotateSecret as the sweep, under the same
 * instance id, only when the secret is one of ours (our vault, our name, our contentType and tags)
 * and the event's version is still the current one: Event Grid delivers at least once and late, and
 * an event about a version a rotation already replaced must not rotate the new one. Everything
 * else is logged and ignored; the function never fails on an irrelevant event (a failure would
 * only make Event Grid redeliver it).
 */
export const KEY_VAULT_SECRET_NEAR_EXPIRY = "keyVaultSecretNearExpiry";

export interface KeyVaultEventDeps {
  secrets: SecretStore;
  keyVaultUrl: string;
  gracePeriodHours: number;
}

const defaultDeps = (): KeyVaultEventDeps => {
  const s = settings();
  return { secrets: getSecretClient(), keyVaultUrl: s.KEY_VAULT_URL, gracePeriodHours: s.OLD_SECRET_GRACE_HOURS };
};

export type KeyVaultEventOutcome = "rotationStarted" | "rotationRunning" | "ignored";

export async function handleKeyVaultEvent(event: GridEvent, client: DurableClient, context: InvocationContext, deps: KeyVaultEventDeps = defaultDeps()): Promise<KeyVaultEventOutcome> {
  const screened = screenKeyVaultEvent(event, deps.keyVaultUrl);
  const base = { eventId: event.id, eventType: screened.eventType };
  const ignore = (reason: string, site?: string): KeyVaultEventOutcome => {
    logEvent(context, EVENTS.keyVaultEvent, { ...base, site, outcome: "ignored", reason, secretName: screened.secretName });
    return "ignored";
  };
  if (!screened.relevant) return ignore(screened.reason);

  let current;
  try {
    // The only read of one secret's current version; the value is dropped here.
    current = (await deps.secrets.getSecret(screened.secretName)).properties;
  } catch (error) {
    if (isSecretNotFound(error)) return ignore(`secret ${screened.secretName} no longer exists`, screened.host);
    throw error; // Key Vault unreachable: fail, so Event Grid retries the delivery.
  }
  const ours = ourSecret(current);
  if (!ours) return ignore(`secret ${screened.secretName} is not one of ours (contentType)`, screened.host);
  if (!ours.tags || ours.tags.site !== screened.host) return ignore(`secret ${screened.secretName} does not carry this site's tags`, screened.host);
  // An offboarding was asked for (docs/architecture.md, "Offboarding"): a rotation would fight it.
  if (offboardingRequested(ours.tags)) return ignore(`${screened.host} is being offboarded or was offboarded`, screened.host);
  if (current.version !== screened.version) {
    return ignore(`stale: version ${screened.version} is no longer current (current ${current.version})`, screened.host);
  }

  const result = await startRotation(client, { host: screened.host, gracePeriodHours: deps.gracePeriodHours, trigger: "event", ...(ours.tags.tenantId ? { tenantId: ours.tags.tenantId } : {}) });
  const outcome: KeyVaultEventOutcome = result.started ? "rotationStarted" : "rotationRunning";
  logEvent(context, EVENTS.keyVaultEvent, { ...base, site: screened.host, instanceId: result.instanceId, outcome, version: screened.version });
  return outcome;
}

df.app.client.eventGrid(KEY_VAULT_SECRET_NEAR_EXPIRY, {
  handler: loggingSettingsErrors(async (event: EventGridEvent, client: DurableClient, context: InvocationContext) => {
    await handleKeyVaultEvent(event as unknown as GridEvent, client, context);
  }),
});
