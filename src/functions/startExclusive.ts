import type { DurableClient, DurableOrchestrationStatus } from "durable-functions";
import { onboardingInstanceIdFor, rotationInstanceIdFor } from "../domain/site";

/**
 * One orchestration per site at a time. Onboarding (`onboard-<host>`) and rotation
 * (`rotate-<host>`) both add and remove the site's passwords and write its Key Vault tags, so
 * neither starts while the other, or another of its own kind, is active for that site: two sweeps,
 * a sweep and an event, or a POST and a sweep never act on one site at once (issues 3 and 4).
 */

const ACTIVE_STATES = new Set(["Running", "Pending", "ContinuedAsNew", "Suspended"]);

export type StartResult =
  | { started: true; instanceId: string }
  /** `blockedBy` is the active instance: this site's own id, or the other kind's. */
  | { started: false; instanceId: string; blockedBy: string; runtimeStatus: string };

/** getStatus throws on an unknown instance (durable-functions 3); that is "none" here. */
export async function instanceStatus(client: DurableClient, instanceId: string): Promise<DurableOrchestrationStatus | undefined> {
  try {
    return await client.getStatus(instanceId, { showInput: false });
  } catch (error) {
    if (/404|could not find|not found/i.test(String((error as Error)?.message))) return undefined;
    throw error;
  }
}

export function isActive(status: DurableOrchestrationStatus | undefined): boolean {
  return status !== undefined && ACTIVE_STATES.has(String(status.runtimeStatus));
}

/** The site's instance ids, the one to start first. */
function siteInstances(kind: "onboard" | "rotate", host: string): [string, string] {
  const onboard = onboardingInstanceIdFor(host);
  const rotate = rotationInstanceIdFor(host);
  return kind === "onboard" ? [onboard, rotate] : [rotate, onboard];
}

/** Starts `orchestrator` for the site unless an onboarding or rotation of that site is active. */
export async function startExclusive(
  client: DurableClient,
  kind: "onboard" | "rotate",
  orchestrator: string,
  host: string,
  input: unknown,
): Promise<StartResult> {
  const [instanceId, other] = siteInstances(kind, host);
  for (const id of [instanceId, other]) {
    const status = await instanceStatus(client, id);
    if (isActive(status)) return { started: false, instanceId, blockedBy: id, runtimeStatus: String(status!.runtimeStatus) };
  }
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

/** "An onboarding of x is already Running" / "A rotation of x is already Pending". */
export function conflictMessage(host: string, result: Extract<StartResult, { started: false }>): string {
  const what = result.blockedBy === onboardingInstanceIdFor(host) ? "An onboarding" : "A rotation";
  return `${what} of ${host} is already ${result.runtimeStatus}`;
}
