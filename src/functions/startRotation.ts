import type { DurableClient, DurableOrchestrationStatus } from "durable-functions";
import { rotationInstanceIdFor } from "../domain/site";
import { ROTATE_SECRET, type RotateSecretInput } from "../orchestrators/rotateSecret";
import { instanceStatus, startExclusive, type StartResult } from "./startExclusive";

/**
 * Starts a site's rotation under its deterministic instance id (`rotate-<host>`), unless a rotation
 * or an onboarding of that site is active (startExclusive). Shared by the three starters: timer
 * sweep, Event Grid, HTTP.
 */
export function startRotation(client: DurableClient, input: RotateSecretInput): Promise<StartResult> {
  return startExclusive(client, "rotate", ROTATE_SECRET, input.host, input);
}

export function rotationStatus(client: DurableClient, host: string): Promise<DurableOrchestrationStatus | undefined> {
  return instanceStatus(client, rotationInstanceIdFor(host));
}
