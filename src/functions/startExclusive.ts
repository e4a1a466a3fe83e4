import type { DurableClient, DurableOrchestrationStatus } from "durable-functions";
import { offboardingInstanceIdFor, onboardingInstanceIdFor, rotationInstanceIdFor } from "../domain/site";

/**
 * One orchestration per site at a time. Onboarding (`onboard-<host>`), rotation (`rotate-<host>`)
 * and offboarding (`offboard-<host>`) all change the site's app, Creatio and Key Vault secret, so
 * none starts while another, or another of its own kind, is active for that site: two sweeps, a
 * sweep and an event, a POST and a sweep, or a DELETE and anything else never act on one site at
 * once (issues 3, 4 and 11; docs/architecture.md, "Key Vault is the registry").
 */

const ACTIVE_STATES = new Set(["Running", "Pending", "ContinuedAsNew", "Suspended"]);

export type SiteRunKind = "onboard" | "rotate" | "offboard";

export type StartResult =
  | { started: true; instanceId: string }
  /** `blockedBy` is the active instance: this site's own id, or another kind's. */
  | { started: false; instanceId: string; blockedBy: string; runtimeStatus: string };

/**
 * getStatus throws on an unknown instance (durable-functions 3); that is "none" here. Without its
 * input unless `showInput` (tenantOfRun reads the input).
 */
export async function instanceStatus(client: DurableClient, instanceId: string, { showInput = false }: { showInput?: boolean } = {}): Promise<DurableOrchestrationStatus | undefined> {
  try {
    return await client.getStatus(instanceId, { showInput });
  } catch (error) {
    if (/404|could not find|not found/i.test(String((error as Error)?.message))) return undefined;
    throw error;
  }
}

/** The Entra tenant a run was started for (its input's `tenantId`; issue 10), or undefined for the home tenant. Read from a status fetched with showInput. */
export function tenantOfRun(status: DurableOrchestrationStatus | undefined): string | undefined {
  const tenantId = (status?.input as { tenantId?: unknown } | null | undefined)?.tenantId;
  return typeof tenantId === "string" ? tenantId : undefined;
}

export function isActive(status: DurableOrchestrationStatus | undefined): boolean {
  return status !== undefined && ACTIVE_STATES.has(String(status.runtimeStatus));
}

const INSTANCE_ID_FOR: Record<SiteRunKind, (host: string) => string> = {
  onboard: onboardingInstanceIdFor,
  rotate: rotationInstanceIdFor,
  offboard: offboardingInstanceIdFor,
};

/** The site's instance ids, the one to start first. */
function siteInstances(kind: SiteRunKind, host: string): string[] {
  const others = (Object.keys(INSTANCE_ID_FOR) as SiteRunKind[]).filter((k) => k !== kind);
  return [INSTANCE_ID_FOR[kind](host), ...others.map((k) => INSTANCE_ID_FOR[k](host))];
}

/** The site's active orchestration of any kind, if one is (checked in the order `kind`, then the others). */
export async function activeSiteInstance(client: DurableClient, kind: SiteRunKind, host: string): Promise<{ instanceId: string; runtimeStatus: string } | undefined> {
  for (const id of siteInstances(kind, host)) {
    const status = await instanceStatus(client, id);
    if (isActive(status)) return { instanceId: id, runtimeStatus: String(status!.runtimeStatus) };
  }
  return undefined;
}

/** Starts `orchestrator` for the site unless an onboarding, rotation or offboarding of that site is active. */
export async function startExclusive(client: DurableClient, kind: SiteRunKind, orchestrator: string, host: string, input: unknown): Promise<StartResult> {
  const instanceId = INSTANCE_ID_FOR[kind](host);
  const active = await activeSiteInstance(client, kind, host);
  if (active) return { started: false, instanceId, blockedBy: active.instanceId, runtimeStatus: active.runtimeStatus };
  try {
    await client.startNew(orchestrator, { instanceId, input });
  } catch (error) {
    // Lost a race with another starter between the status read and the start: the Durable
    // extension refuses to replace a running instance (OverridableExistingInstanceStates
    // NonRunningStates) with 409.
    if (/\b409\b|already exists/i.test(String((error as Error)?.message))) {
      return { started: false, instanceId, blockedBy: instanceId, runtimeStatus: "Running" };
    }
    throw error;
  }
  return { started: true, instanceId };
}

/** "An onboarding of x is already Running" / "A rotation of x is already Pending" / "An offboarding of x ...". */
export function conflictMessage(host: string, result: { blockedBy: string; runtimeStatus: string }): string {
  const what = result.blockedBy === onboardingInstanceIdFor(host) ? "An onboarding" : result.blockedBy === offboardingInstanceIdFor(host) ? "An offboarding" : "A rotation";
  return `${what} of ${host} is already ${result.runtimeStatus}`;
}
