// End to end, issue 14: the compiled app in the local Functions host with an invalid KEY_VAULT_URL
// (local.settings.example.json's placeholder). Every tenants route answers 503 naming the setting
// instead of an empty 500, the timer logs one error line and the host keeps running.
import { spawnHost, type SpawnedHost } from "../../dev/host/spawn";
import { startTestAzurite, waitFor, type TestStorage } from "../host/helpers";

const PLACEHOLDER = "https://<your-vault>.vault.azure.net";

let storage: TestStorage;
let host: SpawnedHost;
const output: string[] = [];

beforeAll(async () => {
  storage = await startTestAzurite();
  host = await spawnHost({
    runTimers: false,
    env: { AzureWebJobsStorage: storage.azurite.connectionString, ROTATION_SCHEDULE: "0 0 3 * * *", KEY_VAULT_URL: PLACEHOLDER },
    onLine: (line) => output.push(line),
  });
}, 120_000);

afterAll(async () => {
  await host?.stop();
  await storage?.stop();
});

const routes: [string, string, string | undefined][] = [
  ["GET", "/api/tenants", undefined],
  ["GET", "/api/tenants/acme.creatio.com", undefined],
  ["POST", "/api/tenants", JSON.stringify({ creatioUrl: "https://acme.creatio.com", creatioCredentialSecretName: "creatio-api-acme" })],
  ["POST", "/api/tenants/acme.creatio.com/rotate", JSON.stringify({ gracePeriodHours: 0 })],
  ["POST", "/api/tenants/acme.creatio.com/rotate", undefined],
];

describe("invalid app settings through the local host", () => {
  it.each(routes)("%s %s answers 503 naming KEY_VAULT_URL, never its value", async (method, path, body) => {
    const response = await fetch(`${host.url}${path}`, { method, body, headers: body ? { "Content-Type": "application/json" } : {} });
    expect(response.status).toBe(503);
    expect(response.headers.get("content-type")).toMatch(/application\/json/);
    const text = await response.text();
    expect(JSON.parse(text)).toEqual({ error: "Invalid app settings: KEY_VAULT_URL must be an https:// URL" });
    expect(text).not.toContain("your-vault");
  });

  it("the sweep logs the settings at error level and the host stays up", async () => {
    const fired = await fetch(`${host.url}/admin/functions/rotationSweep`, { method: "POST", headers: { "Content-Type": "application/json" }, body: "{}" });
    expect(fired.status).toBe(202);
    const line = await waitFor("the sweep's error line", async () => output.find((l) => /\[Error\] \[rotationSweep\].*Invalid app settings: KEY_VAULT_URL/.test(l)));
    expect(line).not.toContain("your-vault");
    // The handler ended normally: the host reports a thrown error as "Function 'rotationSweep' failed".
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(output.some((l) => /Function 'rotationSweep' failed/.test(l))).toBe(false);
    // So the invocation counts as a success; what the "no sweep succeeded" alert watches is missing.
    expect(output.filter((l) => l.includes('"event":"sweep.finished"'))).toEqual([]);
    expect((await fetch(`${host.url}/api/tenants`)).status).toBe(503);
  });
});
