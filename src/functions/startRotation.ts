import type { DurableClient, DurableOrchestrationStatus } from "durable-functions";
import { rotationInstanceIdFor } from "../domain/site";
import { ROTATE_SECRET, type RotateSecretInput } from "../orchestrators/rotateSecret";

/**
 * Starts a site's rotation under its deterministic instance id (`rotate-<host>`), so two sweeps, a
 * sweep and an event, or an event and a POST never rotate one site twice at once (issue 4). Shared
 * by the three starters: timer sweep, Event Grid, HTTP.
 */

const ACTIVE_STATES = new Set(["Running", "Pending", "ContinuedAsNew", "Suspended"]);

export type StartRotationResult =
  | { started: true; instanceId: string }
  | { started: false; instanceId: string; runtimeStatus: string };

/** getStatus throws on an unknown instance (durable-functions 3); that is "none" here. */
export async function rotationStatus(client: DurableClient, host: string): Promise<DurableOrchestrationStatus | undefined> {
  try {
    return await client.getStatus(rotationInstanceIdFor(host), { showInput: false });
  } catch (error) {
    if (/404|could not find|not found/i.test(String((error as Error)?.message))) return undefined;
    throw error;
  }
}

export function isActive(status: DurableOrchestrationStatus | undefined): boolean {
  return status !== undefined && ACTIVE_STATES.has(String(status.runtimeStatus));
}

/** Starts rotateSecret unless one is already running or pending for the site. */
export async function startRotation(client: DurableClient, input: RotateSecretInput): Promise<StartRotationResult> {
  const instanceId = rotationInstanceIdFor(input.host);
  const existing = await rotationStatus(client, input.host);
  if (isActive(existing)) return { started: false, instanceId, runtimeStatus: String(existing!.runtimeStatus) };
  try {
    await client.startNew(ROTATE_SECRET, { instanceId, input });
  } catch (error) {
    // Lost a race with another starter between the status read and the start: the Durable
    // extension refuses to replace a running instance (OverridableExistingInstanceStates
    // NonRunningStates) with 409.
    if (/\b409\b|already exists/i.test(String((error as Error)?.message))) return { started: false, instanceId, runtimeStatus: "Running" };
    throw error;
  }
  return { started: true, instanceId };
}
