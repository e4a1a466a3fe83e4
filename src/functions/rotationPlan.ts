import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from "@azure/functions";
import { httpTriggerFor } from "../api/openapi";
import type { RotationPlan } from "../api/schemas";
import { allSettledOnKeyVault, getSecretClient, type SecretStore } from "../clients/keyVault";
import { planRotations } from "../domain/rotationPlan";
import { settings } from "../settings";
import { answeringSettingsErrors, json, keyVaultUnavailable } from "./responses";
import { listManagedSecrets } from "./rotationSweep";
import { readSweepRecord } from "./sweepRecord";

/**
 * GET /api/rotation-plan (issue 11 parts 2 and 4): what the next sweep would do, without doing it.
 * The same listing (listManagedSecrets: offboarded sites left out) and the same due rule
 * (planRotations, src/domain/rotationPlan.ts) as the sweep, so the answer cannot disagree with it;
 * plus the last sweep's stored outcome (./sweepRecord.ts). Properties and tags only; the only value
 * read is the sweep record's, which is a non-secret summary.
 */
export interface RotationPlanDeps {
  secrets: SecretStore;
  now: () => Date;
  rotateDaysBeforeExpiry: number;
}

const defaultDeps = (): RotationPlanDeps => ({ secrets: getSecretClient(), now: () => new Date(), rotateDaysBeforeExpiry: settings().ROTATE_DAYS_BEFORE_EXPIRY });

const iso = (d: Date | null | undefined) => (d ? d.toISOString() : null);

export async function getRotationPlan(_request: HttpRequest, context: InvocationContext, deps: RotationPlanDeps = defaultDeps()): Promise<HttpResponseInit> {
  const now = deps.now();
  let body: RotationPlan;
  try {
    // Two independent Key Vault reads, at once (one first on a client not yet challenged).
    const [listed, record] = await allSettledOnKeyVault(deps.secrets, [() => listManagedSecrets(deps.secrets, context), () => readSweepRecord(deps.secrets)] as const);
    if (listed.status === "rejected") throw listed.reason;
    if (record.status === "rejected") throw record.reason;
    const { managed } = listed.value;
    const lastSweep = record.value;
    const plans = planRotations(managed, now, deps.rotateDaysBeforeExpiry);
    body = {
      generatedAt: now.toISOString(),
      rotateDaysBeforeExpiry: deps.rotateDaysBeforeExpiry,
      sites: plans.map((p) => ({
        host: p.host,
        due: p.due,
        reason: p.reason ?? null,
        creatioSecretExpiresOn: iso(p.expiresOn),
        dueOn: iso(p.nextRotationDueAt),
        daysLeft: p.daysLeft,
      })),
      lastSweep,
    };
  } catch (error) {
    return keyVaultUnavailable(context, "the list of secrets", error);
  }
  return json(200, body);
}

app.http("rotationPlan", {
  ...httpTriggerFor("getRotationPlan"),
  handler: answeringSettingsErrors((request, context) => getRotationPlan(request, context)),
});
