import { HttpRequest, InvocationContext } from "@azure/functions";
import type { DurableClient } from "durable-functions";
import { createTenant } from "../../src/functions/tenants";
import { startRotation } from "../../src/functions/startRotation";
import { FakeSecretStore } from "./fakes";

/** A Durable client whose instances have the given statuses; unknown ones are 404 as in durable-functions 3. */
function clientWith(statuses: Record<string, string>) {
  const started: string[] = [];
  const client = {
    getStatus: async (instanceId: string) => {
      const runtimeStatus = statuses[instanceId];
      if (!runtimeStatus) throw new Error(`DurableClient error: Durable Functions extension replied with HTTP 404 response. ${instanceId}`);
      return { instanceId, runtimeStatus };
    },
    startNew: async (_name: string, options: { instanceId: string }) => {
      started.push(options.instanceId);
      return options.instanceId;
    },
    createCheckStatusResponse: (_req: unknown, instanceId: string) => ({ status: 202, jsonBody: { id: instanceId } }),
  };
  return { client: client as unknown as DurableClient, started };
}

const HOST = "acme.creatio.com";
const rotation = { host: HOST, gracePeriodHours: 24, trigger: "sweep" as const };

function onboardRequest() {
  const secrets = new FakeSecretStore();
  secrets.seed("creatio-api-acme", JSON.stringify({ username: "Supervisor", password: "pw" }), { tags: { creatioSite: "acme.creatio.com xn--bcher-kva.de 10.0.0.1 127.0.0.1 127.0.0.1:7103" } });
  const request = new HttpRequest({
    method: "POST",
    url: "http://localhost:7071/api/tenants",
    body: { string: JSON.stringify({ creatioUrl: `https://${HOST}`, creatioCredentialSecretName: "creatio-api-acme" }) },
    headers: { "content-type": "application/json" },
  });
  return { request, deps: { secrets, now: () => new Date("2026-11-27T12:00:00Z") } };
}

describe("one orchestration per site: onboarding and rotation never run together", () => {
  it("a rotation does not start while the site's onboarding runs", async () => {
    const { client, started } = clientWith({ [`onboard-${HOST}`]: "Running" });
    expect(await startRotation(client, rotation)).toEqual({ started: false, instanceId: `rotate-${HOST}`, blockedBy: `onboard-${HOST}`, runtimeStatus: "Running" });
    expect(started).toEqual([]);
  });

  it("an onboarding POST answers 409 naming the rotation that runs", async () => {
    const { client, started } = clientWith({ [`rotate-${HOST}`]: "Pending" });
    const { request, deps } = onboardRequest();
    const response = await createTenant(request, client, new InvocationContext({ functionName: "tenantsCreate" }), deps);
    expect(response.status).toBe(409);
    expect(response.jsonBody).toEqual({ error: `A rotation of ${HOST} is already Pending`, instanceId: `rotate-${HOST}` });
    expect(started).toEqual([]);
  });

  it("either starts once the other has ended", async () => {
    const { client, started } = clientWith({ [`onboard-${HOST}`]: "Completed", [`rotate-${HOST}`]: "Failed" });
    expect(await startRotation(client, rotation)).toEqual({ started: true, instanceId: `rotate-${HOST}` });
    const { request, deps } = onboardRequest();
    expect((await createTenant(request, client, new InvocationContext({ functionName: "tenantsCreate" }), deps)).status).toBe(202);
    expect(started).toEqual([`rotate-${HOST}`, `onboard-${HOST}`]);
  });
});
